"""The TLS context of `finance serve`: HTTPS, and mutual TLS when a client CA is given.

Built here rather than by uvicorn's defaults so that what the service promises is set in one
place and checked by a test: TLS 1.2 at least, and with a client CA, no request is served
without a client certificate that CA signed. A file that cannot be used is a ConfigError (one
line, exit 2) before anything starts, not a traceback from inside the server.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from finance.config import CLIENT_CA, TLS_CERT, ConfigError


def server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            [f"{TLS_CERT}: {cert} and its key {key} cannot be loaded: {_reason(exc)}"]
        ) from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                [f"{CLIENT_CA}: {client_ca} holds no usable CA certificate: {_reason(exc)}"]
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(exc: BaseException) -> str:
    """OpenSSL's reason ("KEY_VALUES_MISMATCH", "NO_START_LINE"...), else the message."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
    return str(reason).lower()
