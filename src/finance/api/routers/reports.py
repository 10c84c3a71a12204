"""/v1/reports: receivables aging and the VAT return summary, as JSON or CSV."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from finance.api.deps import ContainerDep, Viewer
from finance.api.report_schemas import AgingOut, VatReturnOut, rows_csv
from finance.api.schemas import IsoDate, render
from finance.services import invoicing

router = APIRouter(prefix="/v1/reports", tags=["reports"])

_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get("/aging", response_model=AgingOut, responses=_CSV)
def aging(
    app: ContainerDep,
    caller: Viewer,
    as_of: Annotated[IsoDate | None, Query(description="Day the buckets are counted from")] = None,
    format: Format = Format.JSON,
) -> Response:
    day = as_of or app.clock.now().date()
    rows = app.store(caller.tenant_id, lambda tx: invoicing.aging_report(tx, day))
    report = AgingOut.of(day, rows)
    if format is Format.CSV:
        return Response(rows_csv(list(report.data)), media_type="text/csv")
    return Response(render(report), media_type="application/json")


@router.get("/vat", response_model=VatReturnOut, responses=_CSV)
def vat(
    app: ContainerDep,
    caller: Viewer,
    start: Annotated[IsoDate, Query(alias="from", description="First day of the period")],
    end: Annotated[IsoDate, Query(alias="to", description="Last day of the period")],
    format: Format = Format.JSON,
) -> Response:
    found = app.store(caller.tenant_id, lambda tx: invoicing.vat_return_report(tx, start, end))
    report = VatReturnOut.of(found)
    if format is Format.CSV:
        return Response(rows_csv(list(report.data)), media_type="text/csv")
    return Response(render(report), media_type="application/json")
