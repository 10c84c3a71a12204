"""`finance serve` over mutual TLS: the service-to-service setup (Marketplace calls Finance with
a client certificate). The CA and certificates are made here (tests/tls_certs.py); the server
runs on the worker's database, so no embedded PostgreSQL is started."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from finance.api.tls import client_common_name, server_context
from finance.auth.tokens import Role, TokenIssuer, load_or_create_issuer_key
from finance.config import ConfigError, Settings, tls_problems
from tests.e2e.helpers import environment, one_error_line, run
from tests.e2e.test_serve import CLEAN_EXIT, serving
from tests.tls_certs import Authority, Issued, issue, make_ca

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    client: Issued  # signed by `ca`: Marketplace
    stranger: Issued  # signed by another CA

    def serve_args(self) -> list[str]:
        return [
            "--tls-cert", str(self.server.cert),
            "--tls-key", str(self.server.key),
            "--client-ca", str(self.ca.cert),
        ]  # fmt: skip

    def client_context(self, identity: Issued | None) -> ssl.SSLContext:
        """A client that trusts the server's CA and presents `identity`, if any."""
        context = ssl.create_default_context(cafile=self.ca.cert)
        if identity is not None:
            context.load_cert_chain(identity.cert, identity.key)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "finance-internal")
    other = make_ca(directory, "elsewhere")
    return Pki(
        ca,
        issue(ca, directory, "finance-api", server_ip=HOST),
        issue(ca, directory, "marketplace"),
        issue(other, directory, "marketplace"),
    )


def local_token(data_dir: Path, tenant: str) -> str:
    """An admin token from the local issuer key that a service on `data_dir` trusts."""
    key = load_or_create_issuer_key(data_dir / "keys" / "token-issuer.pem")
    issuer = TokenIssuer(key, issuer=Settings().jwt_issuer, audience=Settings().jwt_audience)
    return issuer.issue(
        tenant_id=tenant,
        roles=[Role.ADMIN],
        subject="marketplace",
        ttl_s=600,
        now=datetime.now(UTC),
    )


def test_mutual_tls_serves_known_clients_only(
    pki: Pki, tmp_path: Path, database_url: str, tenant: str
) -> None:
    env = environment(tmp_path, database_url, FINANCE_SEALER="off")
    token = local_token(tmp_path, tenant)
    trusted = pki.client_context(pki.client)
    with serving(env, tmp_path / "serve.log", *pki.serve_args(), tls=trusted) as server:
        with httpx2.Client(
            base_url=server.url,
            verify=trusted,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        ) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            opened = http.post(
                "/v1/accounts",
                json={"code": "cash", "name": "Cash", "type": "asset", "currency": "USD"},
                headers={"Idempotency-Key": "open-cash"},
            )
            assert opened.status_code == 201, opened.text
            assert [a["code"] for a in http.get("/v1/accounts").json()["data"]] == ["cash"]

        # No client certificate, or one from a CA the server does not trust: the handshake
        # is refused, so no request reaches the application.
        for refused in (pki.client_context(None), pki.client_context(pki.stranger)):
            with pytest.raises(httpx2.TransportError):
                httpx2.get(f"{server.url}/healthz", verify=refused, timeout=5.0)
        # Plain HTTP on the TLS port gets no HTTP answer at all.
        with pytest.raises(httpx2.TransportError):
            httpx2.get(server.url.replace("https://", "http://") + "/healthz", timeout=5.0)
        assert server.stop() in CLEAN_EXIT

    assert "Traceback" not in server.output()
    events = [json.loads(line) for line in server.stdout().splitlines()]
    [start] = [event for event in events if event["event"] == "serve.start"]
    assert start["tls"] == "mutual"
    requests = [event for event in events if event["event"] == "request"]
    # The three served requests and nothing of the refused connections.
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("GET", "/readyz", 200),
        ("GET", "/healthz", 200),
        ("POST", "/v1/accounts", 201),
        ("GET", "/v1/accounts", 200),
    ]
    # Each line names the caller by its certificate's CN (and never the token).
    assert {r.get("client_cn") for r in requests} == {"marketplace"}
    assert token not in server.output()


def test_the_server_context_requires_tls_1_2_and_a_client_certificate(pki: Pki) -> None:
    mutual = server_context(pki.server.cert, pki.server.key, pki.ca.cert)
    assert mutual.minimum_version is ssl.TLSVersion.TLSv1_2
    assert mutual.verify_mode is ssl.CERT_REQUIRED
    server_only = server_context(pki.server.cert, pki.server.key, None)
    assert server_only.minimum_version is ssl.TLSVersion.TLSv1_2
    assert server_only.verify_mode is ssl.CERT_NONE


@pytest.mark.parametrize(
    ("peercert", "expected"),
    [
        (None, None),
        ({}, None),  # no certificate: CERT_REQUIRED never lets this far, but never guess
        ({"subject": ((("organizationName", "Shop"),),)}, None),
        (
            {"subject": ((("countryName", "FR"),), (("commonName", "marketplace"),))},
            "marketplace",
        ),
        ({"subject": ((("commonName", "x" * 65),),)}, "(withheld)"),
        ({"subject": ((("commonName", "evil\nline"),),)}, "(withheld)"),
    ],
)
def test_the_logged_client_name_is_the_certificate_cn_when_short_and_printable(
    peercert: object, expected: str | None
) -> None:
    assert client_common_name(peercert) == expected


def paths_of(pki: Pki, tmp_path: Path) -> dict[str, Path]:
    return {
        "server_cert": pki.server.cert,
        "server_key": pki.server.key,
        "client_key": pki.client.key,
        "ca": pki.ca.cert,
        "missing": tmp_path / "missing.pem",
        "directory": tmp_path,
        "empty": tmp_path / "empty.pem",
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"key": "server_key"}, ["FINANCE_TLS_KEY (--tls-key): set without"]),
        ({"cert": "server_cert"}, ["FINANCE_TLS_CERT (--tls-cert): set without"]),
        ({"client_ca": "ca"}, ["FINANCE_CLIENT_CA (--client-ca): mutual TLS needs"]),
        (
            {"cert": "server_cert", "key": "missing"},
            ["FINANCE_TLS_KEY (--tls-key): {missing}: no such file or directory"],
        ),
        (
            {"cert": "directory", "key": "empty", "client_ca": "missing"},
            [
                "FINANCE_TLS_CERT (--tls-cert): {directory}: is a directory",
                "FINANCE_TLS_KEY (--tls-key): {empty}: is empty",
                "FINANCE_CLIENT_CA (--client-ca): {missing}: no such file",
            ],
        ),
        ({"cert": "server_cert", "key": "server_key", "client_ca": "ca"}, []),
    ],
)
def test_tls_problems_name_each_unusable_setting(
    pki: Pki, tmp_path: Path, given: dict[str, str], expected: list[str]
) -> None:
    paths = paths_of(pki, tmp_path)
    paths["empty"].touch()
    problems = tls_problems(
        *(paths[given[name]] if name in given else None for name in ("cert", "key", "client_ca"))
    )
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start.format(**paths)), problem


def test_files_openssl_cannot_use_are_named(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=r"FINANCE_TLS_CERT \(--tls-cert\): .* and its key"):
        server_context(pki.server.cert, pki.client.key, None)  # another certificate's key
    with pytest.raises(ConfigError, match=r"FINANCE_CLIENT_CA .* holds no usable CA certificate"):
        server_context(pki.server.cert, pki.server.key, pki.client.key)


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (["--client-ca", "{ca}"], "FINANCE_CLIENT_CA (--client-ca): mutual TLS needs"),
        # Another certificate's key: refused by OpenSSL, named before anything starts.
        (
            ["--tls-cert", "{server_cert}", "--tls-key", "{client_key}"],
            "FINANCE_TLS_CERT (--tls-cert): {server_cert} and its key",
        ),
    ],
)
def test_bad_tls_options_are_one_line_and_exit_2(
    pki: Pki, tmp_path: Path, options: list[str], names: str
) -> None:
    paths = paths_of(pki, tmp_path)
    args = [option.format(**paths) for option in options]
    result = run(environment(tmp_path, None), "serve", *args)
    line = one_error_line(result, 2, "error: invalid configuration: ")
    assert names.format(**paths) in line
    # Refused before the embedded PostgreSQL was set up.
    assert not (tmp_path / "postgres").exists()


def test_tls_settings_come_from_the_environment_too(pki: Pki, tmp_path: Path) -> None:
    env = environment(tmp_path, None, FINANCE_TLS_KEY=str(pki.server.key))
    line = one_error_line(run(env, "serve"), 2, "error: invalid configuration: ")
    assert "FINANCE_TLS_KEY (--tls-key): set without FINANCE_TLS_CERT" in line
