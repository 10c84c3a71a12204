"""The tamper corpus (issue 3; docs/proofs.md section 8): a real export made by `finance export`
from a real ledger, mutated in every way an attacker or a faulty exporter might, each of which
`finance verify` must reject with exit 1 naming the check that caught it.

Each mutation of the range package is tried three ways:

* the package on its own (`finance verify package.json`): the proof checks must catch it;
* inside the exported bundle, the manifest left as signed: the manifest's hash catches it;
* inside a bundle whose manifest was re-made and signed with the REAL key (a compromised or
  buggy exporter): the proof checks still catch it, so the manifest signature is not the only
  line of defence.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import ensure_service_login
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.signers.local import LocalSigner
from finance.domain.accounts import AccountType
from finance.proofs.audit_bundle import entries_path, package_path
from finance.proofs.bundle import build_bundle, read_bundle
from finance.services import ledger
from tests.databases import fresh_database
from tests.e2e.helpers import environment, ok
from tests.e2e.verifying import Auditor
from tests.integration.helpers import new_tenant, now, open_account, post_many
from tests.signers import MemorySigner, trust_for

START, END, SIZE = 2, 17, 20
Mutation = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Export:
    tenant: str
    bundle: bytes
    key_pem: bytes
    signer: LocalSigner
    env: dict[str, str]

    @property
    def files(self) -> dict[str, bytes]:
        return dict(read_bundle(self.bundle, trust_for(self.signer)).files)

    @property
    def package(self) -> bytes:
        return self.files[package_path(START, END)]


def export_bundle(env: dict[str, str], tenant: str, first: int, last: int, *extra: str) -> bytes:
    printed = ok(
        env, "export", "--tenant", tenant, "--from", str(first), "--to", str(last), "--json", *extra
    )
    return Path(json.loads(printed.out)["location"]).read_bytes()


@pytest.fixture(scope="module")
def export(
    store: PostgresLedgerStore, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Export:
    """Entries 2..17 of a 20-entry ledger, exported by the real command."""
    data_dir = tmp_path_factory.mktemp("tamper")
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    post_many(store, tenant, SIZE, cash, equity)
    env = environment(data_dir, database_url)
    ok(env, "checkpoint", "--tenant", tenant)
    bundle = export_bundle(env, tenant, START, END)
    key_pem = ok(env, "signer", "public-key").out.encode()
    signer = LocalSigner(data_dir / "keys" / "ledger-signer.pem")
    return Export(tenant, bundle, key_pem, signer, env)


@pytest.fixture
def auditor(
    export: Export,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Auditor:
    auditor = Auditor(tmp_path, capsys, monkeypatch)
    auditor.key = auditor.write("key.pem", export.key_pem)
    return auditor


# --- Building tampered files -------------------------------------------------------------------


def mutated(package: bytes, change: Mutation) -> bytes:
    parsed: dict[str, Any] = json.loads(package)
    change(parsed)
    return rfc8785.dumps(parsed)


def with_member(bundle: bytes, path: str, content: bytes) -> bytes:
    """The bundle with one file's bytes replaced, everything else (the manifest) as it was."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as target,
    ):
        for member in source:
            data = source.extractfile(member)
            assert data is not None
            payload = data.read()
            if member.name.split("/", 1)[1] == path:
                payload = content
            info = copy.copy(member)
            info.size = len(payload)
            target.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def resigned(export: Export, package: bytes, signer: Any = None) -> bytes:
    """The bundle re-made around `package`, the entries file made to match it where it parses,
    and the manifest signed by `signer` (by default the real key)."""
    files = export.files
    files[package_path(START, END)] = package
    try:
        entries = json.loads(package)["entries"]
    except (ValueError, KeyError):
        pass
    else:
        files[entries_path(START, END)] = b"".join(rfc8785.dumps(e) + b"\n" for e in entries)
    manifest = read_bundle(export.bundle, trust_for(export.signer)).manifest
    _, data = build_bundle(
        manifest.ledger_id,
        manifest.start_id,
        manifest.end_id,
        manifest.checkpoint,
        files,
        [("finance.local", signer or export.signer)],
        manifest.tool_version,
    )
    return data


# --- Mutations of the range package ------------------------------------------------------------


def changed_amount(package: dict[str, Any]) -> None:
    # Both lines, so the entry still balances and only the chain can tell.
    for posting in package["entries"][3]["postings"]:
        posting["amount"] = str(int(posting["amount"]) + 1)


def changed_account(package: dict[str, Any]) -> None:
    postings = package["entries"][3]["postings"]
    postings[0]["account"], postings[1]["account"] = postings[1]["account"], postings[0]["account"]


def deleted_entry(package: dict[str, Any]) -> None:
    del package["entries"][5]


def deleted_and_renumbered(package: dict[str, Any]) -> None:
    del package["entries"][5]
    for entry in package["entries"][5:]:
        entry["entry_id"] -= 1
    package["entries"].append(copy.deepcopy(package["entries"][-1]))
    package["entries"][-1]["entry_id"] += 1


def swapped_entries(package: dict[str, Any]) -> None:
    entries = package["entries"]
    entries[4], entries[5] = entries[5], entries[4]


def swapped_and_renumbered(package: dict[str, Any]) -> None:
    swapped_entries(package)
    entries = package["entries"]
    entries[4]["entry_id"], entries[5]["entry_id"] = entries[5]["entry_id"], entries[4]["entry_id"]


def appended_entry(package: dict[str, Any]) -> None:
    extra = copy.deepcopy(package["entries"][-1])
    extra["entry_id"] += 1
    package["entries"].append(extra)


def edited_tree_size(package: dict[str, Any]) -> None:
    package["checkpoint"]["body"]["tree_size"] += 1


def edited_root(package: dict[str, Any]) -> None:
    body = package["checkpoint"]["body"]
    body["root_hash"] = body["chain_head"]


MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "changed amount": (changed_amount, "chain"),
    "changed account": (changed_account, "chain"),
    "deleted entry": (deleted_entry, "range"),
    "deleted entry, ids renumbered": (deleted_and_renumbered, "chain"),
    "swapped entries": (swapped_entries, "chain"),
    "swapped entries, ids renumbered": (swapped_and_renumbered, "chain"),
    "extra entry appended": (appended_entry, "range"),
    "edited tree size": (edited_tree_size, "checkpoint"),
    "edited root": (edited_root, "checkpoint"),
}


def float_number(package: bytes) -> bytes:
    return package.replace(
        f'"count":{END - START + 1}'.encode(), f'"count":{END - START + 1}.0'.encode()
    )


def duplicate_key(package: bytes) -> bytes:
    return package.replace(b'"count":', f'"count":{END - START + 1},"count":'.encode(), 1)


def non_canonical_whitespace(package: bytes) -> bytes:
    return package.replace(b'"count":', b'"count": ', 1)


RAW_MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "number written as a float": float_number,
    "duplicate JSON key": duplicate_key,
    "non-canonical whitespace": non_canonical_whitespace,
}


def check_of(result: Any) -> str:
    assert result.code == 1, result
    line: str = result.err_line
    assert line.startswith("invalid: "), line
    return line.removeprefix("invalid: ").split(":", 1)[0]


# --- The corpus -------------------------------------------------------------------------------


def test_the_untouched_export_verifies(export: Export, auditor: Auditor) -> None:
    bundle = auditor.write("bundle.tar", export.bundle)
    result = auditor.verify(
        bundle, "--public-key", auditor.key, "--expect-start", "2", "--expect-end", "17"
    )
    assert result.code == 0, result
    assert result.out.startswith(
        f"valid: ledger {export.tenant} entries 2..17 (16) against checkpoint seq 0 tree size 20"
    )
    package = auditor.write("package.json", export.package)
    assert auditor.verify(package, "--public-key", auditor.key).code == 0


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_mutated_package_is_rejected_every_way(
    name: str, export: Export, auditor: Auditor
) -> None:
    change, check = MUTATIONS[name]
    package = mutated(export.package, change)
    expect = ("--expect-start", str(START), "--expect-end", str(END))

    alone = auditor.verify(
        auditor.write("package.json", package), "--public-key", auditor.key, *expect
    )
    assert check_of(alone) == check, alone.err

    inside = with_member(export.bundle, package_path(START, END), package)
    as_exported = auditor.verify(
        auditor.write("bundle.tar", inside), "--public-key", auditor.key, *expect
    )
    assert check_of(as_exported) == "bundle", as_exported.err
    assert package_path(START, END) in as_exported.err
    assert "manifest" in as_exported.err

    remade = auditor.verify(
        auditor.write("remade.tar", resigned(export, package)), "--public-key", auditor.key, *expect
    )
    assert check_of(remade) == check, remade.err


@pytest.mark.parametrize("name", sorted(RAW_MUTATIONS))
def test_non_canonical_bytes_are_rejected_at_parse(
    name: str, export: Export, auditor: Auditor
) -> None:
    package = RAW_MUTATIONS[name](export.package)
    assert package != export.package
    alone = auditor.verify(auditor.write("package.json", package), "--public-key", auditor.key)
    assert check_of(alone) == "parse", alone.err
    remade = auditor.verify(
        auditor.write("remade.tar", resigned(export, package)), "--public-key", auditor.key
    )
    assert check_of(remade) == "parse", remade.err


def test_a_truncated_tail_is_caught_by_expect_end(export: Export, auditor: Auditor) -> None:
    # A log serving a shorter range than asked for: a genuinely signed, valid proof of 2..16.
    shorter = export_bundle(export.env, export.tenant, START, END - 1)
    path = auditor.write("short.tar", shorter)
    assert auditor.verify(path, "--public-key", auditor.key).code == 0
    result = auditor.verify(path, "--public-key", auditor.key, "--expect-end", str(END))
    assert check_of(result) == "expect", result.err


def test_a_bundle_re_signed_with_another_key_is_rejected(export: Export, auditor: Auditor) -> None:
    forger = MemorySigner(seed=99)
    remade = resigned(export, export.package, signer=forger)
    result = auditor.verify(auditor.write("forged.tar", remade), "--public-key", auditor.key)
    assert check_of(result) == "bundle", result.err
    assert "signature" in result.err
    # And the range package alone, its statement and checkpoint re-signed by the forger.
    package = json.loads(export.package)
    trusted_only_by_forger = auditor.write("forger.pem", forger.public_key_pem())
    result = auditor.verify(
        auditor.write("p.json", rfc8785.dumps(package)), "--public-key", trusted_only_by_forger
    )
    assert check_of(result) == "checkpoint", result.err


def test_a_file_altered_against_the_manifest_is_rejected(export: Export, auditor: Auditor) -> None:
    path = entries_path(START, END)
    entries = export.files[path]
    altered = with_member(export.bundle, path, entries.replace(b'"amount":"', b'"amount":"9', 1))
    result = auditor.verify(auditor.write("altered.tar", altered), "--public-key", auditor.key)
    assert check_of(result) == "bundle", result.err
    assert path in result.err


def test_rewritten_history_re_signed_with_the_real_key_is_caught_by_the_state(
    export: Export,
    auditor: Auditor,
    pg_server_uri: str,
    database_url: str,
) -> None:
    """The operator rebuilds the tenant's ledger with one entry changed (a restored and edited
    database) and re-seals it with the real key. Every signature is genuine; only an auditor
    who kept the checkpoint they saw before can tell."""
    state = str(auditor.root / "state.json")
    first = auditor.write("first.tar", export.bundle)
    assert auditor.verify(first, "--public-key", auditor.key, "--state", state).code == 0

    forged_url = rewritten_ledger(pg_server_uri, export.tenant)
    forged_env = {
        **export.env,
        "FINANCE_DATABASE_URL": forged_url,
        "FINANCE_EXPORT_DIR": str(auditor.root / "forged-exports"),
    }
    ok(forged_env, "checkpoint", "--tenant", export.tenant)
    forged = export_bundle(forged_env, export.tenant, START, END)
    path = auditor.write("forged.tar", forged)
    # Alone, it is a perfectly valid proof signed by the real key...
    assert auditor.verify(path, "--public-key", auditor.key).code == 0
    # ...of another history than the one the auditor saw.
    result = auditor.verify(path, "--public-key", auditor.key, "--state", state)
    assert check_of(result) == "state", result.err
    assert "equivocation" in result.err
    evidence = result.out.splitlines()
    assert len(evidence) == 2  # both signed checkpoints, for the auditor to keep


def rewritten_ledger(server_uri: str, tenant: str) -> str:
    """A new database holding `tenant` with as many entries as the real one, other contents."""
    url = fresh_database(server_uri, f"forged_{tenant.replace('-', '_')}")
    database = Database(ensure_service_login(url), admin_conninfo=url, pool_max=2)
    database.open()
    try:
        store = PostgresLedgerStore(database)
        store(tenant, lambda tx: ledger.create_tenant(tx, "Rewritten", now()))
        cash = open_account(store, tenant, "cash")
        equity = open_account(store, tenant, "equity", AccountType.EQUITY)
        post_many(store, tenant, SIZE, cash, equity)
    finally:
        database.close()
    return url
