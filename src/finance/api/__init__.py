"""The HTTP API (FastAPI): thin routers over the use cases, errors as RFC 9457 problems."""
