"""An AWS KMS emulator (moto) served over HTTP on 127.0.0.1, for tests that reach KMS the way the
service does: through FINANCE_SIGNING_ENDPOINT, from this process or from a `finance` command.

moto has no Ed25519 (ECC_NIST_EDWARDS25519) keys, so keys here are ECDSA P-256. Credentials are
dummies and the AWS config files point nowhere, so no test can reach a real account.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Variables of the outer environment that would pick another account, region or profile.
FOREIGN_AWS_VARIABLES = ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS")


@dataclass(frozen=True)
class KmsServer:
    endpoint: str

    def client(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=REGION,
        ).client("kms", endpoint_url=self.endpoint)

    def create_key(self, key_spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> str:
        response = self.client().create_key(KeySpec=key_spec, KeyUsage=usage)
        return str(response["KeyMetadata"]["KeyId"])


@contextlib.contextmanager
def kms_server() -> Iterator[KmsServer]:
    """A moto server on a free port of 127.0.0.1, stopped on exit."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield KmsServer(f"http://{host}:{port}")
    finally:
        server.stop()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
