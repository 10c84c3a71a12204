"""Probes and metrics: /healthz (process up), /readyz (database and schema), /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finance.api.deps import ContainerDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready, with the reason"}})
def readyz(app: ContainerDep) -> JSONResponse:
    ok, reason = app.database.ready()
    body = {
        "status": "ready" if ok else "not_ready",
        "reason": reason,
        "write_mode": app.settings.write_mode.value,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
