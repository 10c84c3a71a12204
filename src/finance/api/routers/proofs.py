"""/v1/checkpoints and /v1/journal/{id}/receipt: signed checkpoints and the proofs that tie
entries and earlier checkpoints to them (docs/proofs.md, sections 4 and 6).

Signed objects are sent as their RFC 8785 bytes, so that what a client saves is byte for byte
what an offline verifier parses (`SignedCheckpoint.from_bytes` refuses anything else).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from finance import limits
from finance.api.deps import Accountant, ContainerDep, IdempotencyKey, Viewer, idempotent_write
from finance.api.pagination import Cursor, Limit, decode_int_cursor, page_of
from finance.api.schemas import (
    CHECKPOINTS_PATH,
    CheckpointOut,
    CheckpointPage,
    CheckpointPendingOut,
    CheckpointRef,
    ConsistencyOut,
    checkpoint_status,
    render,
)
from finance.domain.errors import LedgerRejection, RejectCode
from finance.proofs.chain import canonical_bytes
from finance.proofs.strict_json import JSON_INT_MAX, b64encode
from finance.services.idempotency import check_key
from finance.services.ports import LedgerTransaction, StoredCheckpoint

router = APIRouter(tags=["proofs"])

Seq = Annotated[int, Path(ge=0, le=JSON_INT_MAX, description="Checkpoint sequence number")]
_SIGNED_ENVELOPE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The signed checkpoint {body, signatures}, as RFC 8785 bytes",
        "content": {"application/json": {}},
    }
}


def _envelope(stored: StoredCheckpoint, status_code: int = 200) -> Response:
    return Response(
        content=stored.envelope().to_bytes(),
        status_code=status_code,
        media_type="application/json",
        headers={"Checkpoint-Status": checkpoint_status(stored)},
    )


@router.post(
    CHECKPOINTS_PATH,
    status_code=201,
    responses={
        201: {"description": "The signed checkpoint covering every entry posted so far"},
        202: {"model": CheckpointPendingOut, "description": "Issued; the signer is down"},
    },
)
def create_checkpoint(
    request: Request,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Seal this tenant's ledger now and sign: 201 with the signed checkpoint, or 202 when it
    is issued but waits for the signer (it is signed, in order, when the signer is back). With
    no entries since the last checkpoint, that checkpoint. `409 ledger_empty` for a ledger
    without entries."""
    if idempotency_key is None:
        raise LedgerRejection(
            RejectCode.IDEMPOTENCY_KEY_MISSING, "writes need an Idempotency-Key header"
        )
    check_key(idempotency_key)
    # Sealing and signing are transactions of their own (signing must not hold one open); the
    # key stores the outcome. A retry may seal entries posted meanwhile, which the sealer
    # would do anyway, and still replays the first response.
    stored = app.proofs.checkpoint_now(caller.tenant_id)
    reason = app.proofs.status.state().reason or "the checkpoint signer is unavailable"

    def operation(_: LedgerTransaction) -> tuple[int, bytes]:
        if stored.is_signed:
            return 201, stored.envelope().to_bytes()
        pending = CheckpointPendingOut(
            reason=reason, seq=stored.seq, checkpoint=stored.envelope().to_json()
        )
        return 202, render(pending)

    return idempotent_write(request, app, caller, idempotency_key, None, operation)


@router.get(CHECKPOINTS_PATH, response_model=CheckpointPage)
def list_checkpoints(
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
) -> CheckpointPage:
    """Newest first, signed and pending."""
    before = decode_int_cursor(cursor)
    found = app.proofs.list_checkpoints(caller.tenant_id, before, limit + 1)
    page, next_cursor = page_of(found, limit, lambda stored: stored.seq)
    return CheckpointPage(data=[CheckpointOut.of(c) for c in page], next_cursor=next_cursor)


@router.get(f"{CHECKPOINTS_PATH}/latest", responses=_SIGNED_ENVELOPE)
def latest_checkpoint(app: ContainerDep, caller: Viewer) -> Response:
    """The newest signed checkpoint; `404 checkpoint_not_found` before the first."""
    return _envelope(app.proofs.latest_signed(caller.tenant_id))


@router.get(f"{CHECKPOINTS_PATH}/consistency", response_model=ConsistencyOut)
def consistency(
    app: ContainerDep,
    caller: Viewer,
    from_seq: Annotated[int, Query(alias="from", ge=0, le=JSON_INT_MAX)],
    to_seq: Annotated[int, Query(alias="to", ge=0, le=JSON_INT_MAX)],
) -> ConsistencyOut:
    """The RFC 9162 consistency proof from checkpoint `from` to checkpoint `to`."""
    found = app.proofs.consistency(caller.tenant_id, from_seq, to_seq)
    return ConsistencyOut.model_validate(
        {
            "from": CheckpointRef.of(found.first),
            "to": CheckpointRef.of(found.second),
            "proof": [b64encode(value) for value in found.proof],
        }
    )


@router.get(f"{CHECKPOINTS_PATH}/{{seq}}", responses=_SIGNED_ENVELOPE)
def get_checkpoint(seq: Seq, app: ContainerDep, caller: Viewer) -> Response:
    """One checkpoint {body, signatures}; while pending it has no signatures (header
    `Checkpoint-Status: pending`)."""
    return _envelope(app.proofs.checkpoint(caller.tenant_id, seq))


@router.get(
    "/v1/journal/{entry_id}/receipt",
    responses={200: {"description": "finance/entry-receipt/v1, as RFC 8785 bytes"}},
)
def entry_receipt(
    entry_id: UUID,
    app: ContainerDep,
    caller: Viewer,
    checkpoint: Annotated[int | None, Query(ge=0, le=JSON_INT_MAX)] = None,
) -> Response:
    """The entry, its inclusion path and the signed checkpoint it leads to: verifiable alone.
    `409 entry_not_sealed` (with Retry-After) until a signed checkpoint covers the entry."""
    receipt = app.proofs.receipt(caller.tenant_id, entry_id, checkpoint)
    return Response(content=canonical_bytes(receipt), media_type="application/json")
