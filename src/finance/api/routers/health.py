"""Probes and metrics: /healthz (process up), /readyz (database, schema and checkpoint signing),
/metrics."""

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
    """503 when the database cannot serve. 200 `degraded` when checkpoints cannot be signed:
    postings go on and checkpoints queue, so the instance stays in rotation."""
    ok, reason = app.database.ready()
    body: dict[str, object] = {
        "status": "ready" if ok else "not_ready",
        "reason": reason,
        "write_mode": app.settings.write_mode.value,
    }
    if not ok:
        return JSONResponse(body, status_code=503)
    body["unsigned_checkpoints"] = app.proofs.unsigned_summary().count
    signing = app.proofs.status.state()
    if signing.degraded:
        assert signing.since is not None
        body.update(
            status="degraded",
            reason=signing.reason,
            degraded_since=signing.since.isoformat(),
        )
    return JSONResponse(body)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
