"""The TLS context of `finance serve`: HTTPS, and mutual TLS when a client CA is given.

Built here rather than by uvicorn's defaults so that what the service promises is set in one
place and checked by a test: TLS 1.2 at least, and with a client CA, no request is served
without a client certificate that CA signed. A file that cannot be used is a ConfigError (one
line, exit 2) before anything starts, not a traceback from inside the server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from finance.config import CLIENT_CA, TLS_CERT, ConfigError

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

# X.520's upper bound on a common name (ub-common-name); anything longer is not logged as is.
COMMON_NAME_CHARS_MAX = 64


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


def client_common_name(peercert: object) -> str | None:
    """The subject CN of a verified client certificate, from `SSLSocket.getpeercert()`'s dict.
    Logged with each request, so only a short printable name is kept as it is."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                text = str(value)
                if len(text) <= COMMON_NAME_CHARS_MAX and text.isprintable():
                    return text
                return "(withheld)"
    return None


def with_client_name(app: ASGIApp, common_name: str) -> ASGIApp:
    """`app`, with the connection's client certificate CN in each request's state
    (`client_cn`), where the request log (finance.api.app.RequestLog) finds it."""

    async def tagged(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["client_cn"] = common_name
        await app(scope, receive, send)

    return tagged


def client_identity_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, reading the client certificate once per connection.

    uvicorn does not pass the peer certificate to the application (no ASGI `tls` extension),
    but asyncio calls `connection_made` after the TLS handshake, when the verified
    certificate is known: the protocol's app is wrapped there, for that connection only."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class ClientIdentityProtocol(base):  # type: ignore[misc]
        app: ASGIApp  # set by uvicorn's protocol from its config

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            common_name = client_common_name(transport.get_extra_info("peercert"))
            if common_name is not None:
                self.app = with_client_name(self.app, common_name)

    return ClientIdentityProtocol
