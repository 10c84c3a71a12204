"""Request and response bodies. Amounts are JSON integers of minor units: floats, strings and
booleans are refused by strict types before any domain code runs.

The API and the CLI share these: the same request becomes the same draft, and the same
response the same bytes (`render`), which matters because both answer under idempotency keys
that either may replay.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from finance import limits
from finance.domain.accounts import Account, AccountType, Side
from finance.domain.entries import DEFAULT_TYPE, REVERSAL_TYPE, EntryDraft, Line, PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.money import AMOUNT_MINOR_MAX
from finance.proofs.strict_json import b64encode
from finance.services.batches import BatchEntry, BatchResult, BatchStatus
from finance.services.idempotency import request_fingerprint
from finance.services.ledger import AccountBalance
from finance.services.ports import AccountLine, AccountTotals, CurrencyTotals, StoredCheckpoint

Metadata = Annotated[dict[StrictStr, StrictStr], Field(max_length=limits.METADATA_KEYS_MAX)]
CurrencyCode = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]

ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_DATE = re.compile(ISO_DATE_PATTERN)


def _iso_date_text(value: object) -> object:
    """Only the text YYYY-MM-DD (or a date already parsed) is a date. Pydantic alone also
    takes a Unix timestamp (0 is 1970-01-01), a float and a datetime at midnight in any
    zone: an entry's accounting date would then depend on how the client happened to write
    it, and a typo would post in 1970."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("a date must be written YYYY-MM-DD")


# Documented with its pattern, so that clients (and the schema fuzzer) know the rule.
IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date_text),
    WithJsonSchema({"type": "string", "format": "date", "pattern": ISO_DATE_PATTERN}),
]


JOURNAL_PATH = "/v1/journal"
JOURNAL_BATCH_PATH = "/v1/journal/batch"


def render(model: BaseModel) -> bytes:
    """The bytes of a response body, as sent and as replayed under an idempotency key."""
    return json.dumps(model.model_dump(mode="json"), separators=(",", ":")).encode()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(_In):
    code: Annotated[StrictStr, Field(min_length=1, max_length=limits.ACCOUNT_CODE_CHARS_MAX)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=limits.NAME_CHARS_MAX)]
    type: AccountType
    currency: CurrencyCode
    debits_must_not_exceed_credits: StrictBool = False
    credits_must_not_exceed_debits: StrictBool = False
    metadata: Metadata = Field(default_factory=dict)


class LineIn(_In):
    account_id: UUID
    side: Side
    amount: StrictInt = Field(
        gt=0, le=AMOUNT_MINOR_MAX, description="Positive integer of the currency's minor units"
    )
    currency: CurrencyCode


class EntryCreate(_In):
    lines: Annotated[list[LineIn], Field(max_length=limits.LINES_PER_ENTRY_MAX * 10)]
    memo: Annotated[StrictStr, Field(max_length=limits.MEMO_CHARS_MAX)] | None = None
    effective_date: IsoDate | None = Field(
        default=None, description="Accounting date (YYYY-MM-DD); today (UTC) when omitted"
    )
    type: Annotated[StrictStr, Field(max_length=limits.ENTRY_TYPE_CHARS_MAX)] = DEFAULT_TYPE
    source: Annotated[StrictStr, Field(max_length=limits.SOURCE_CHARS_MAX)] | None = None
    source_id: Annotated[StrictStr, Field(max_length=limits.SOURCE_CHARS_MAX)] | None = None
    metadata: Metadata = Field(default_factory=dict)

    def idempotency_body(self) -> dict[str, Any]:
        """What the idempotency fingerprint compares (with POST and JOURNAL_PATH): the fields
        the client sent, so that key order and omitted defaults do not make a retry differ."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_draft(self, today: date) -> EntryDraft:
        """The domain draft; `today` (UTC) is the effective date when none was given."""
        if self.type == REVERSAL_TYPE:
            raise LedgerRejection(
                RejectCode.VALIDATION_FAILED,
                "REVERSAL entries are made with POST /v1/journal/{id}/reverse",
            )
        return EntryDraft(
            lines=tuple(Line(ln.account_id, ln.side, ln.amount, ln.currency) for ln in self.lines),
            effective_date=self.effective_date or today,
            type=self.type,
            memo=self.memo,
            source=self.source,
            source_id=self.source_id,
            metadata=self.metadata,
        )


class BatchEntryCreate(EntryCreate):
    """One entry of a batch: the body of POST /v1/journal, its key, and the linked flag."""

    idempotency_key: StrictStr = Field(
        description="1..255 printable ASCII characters without spaces, as the Idempotency-Key"
        " header: the same key and entry replay the first result, also across single posts"
    )
    linked: StrictBool = Field(
        default=False,
        description="Linked with the next entry: the chain up to the first entry without the"
        " flag posts all or nothing",
    )

    def idempotency_body(self) -> dict[str, Any]:
        """The entry's own fields, so that its fingerprint is that of the same entry sent to
        POST /v1/journal: either may replay the other."""
        return self.model_dump(
            mode="json", exclude_unset=True, exclude={"idempotency_key", "linked"}
        )

    def to_batch_entry(self) -> BatchEntry:
        fingerprint = request_fingerprint("POST", JOURNAL_PATH, self.idempotency_body())
        return BatchEntry(self.idempotency_key, fingerprint, self.to_draft, self.linked)


class BatchCreate(_In):
    entries: list[BatchEntryCreate] = Field(
        description="1..FINANCE_BATCH_ENTRIES_MAX (default 1,000) entries, posted in order"
    )


class ReversalCreate(_In):
    memo: Annotated[StrictStr, Field(max_length=limits.MEMO_CHARS_MAX)] | None = None
    effective_date: IsoDate | None = Field(
        default=None, description="Accounting date of the reversal; the original's when omitted"
    )


class AccountOut(BaseModel):
    id: UUID
    code: str
    name: str
    type: AccountType
    normal_side: Side
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            code=account.code,
            name=account.name,
            type=account.type,
            normal_side=account.type.normal_side,
            currency=account.currency,
            debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.credits_must_not_exceed_debits,
            closed=account.closed,
            metadata=account.metadata,
            created_at=account.created_at,
        )


class LineOut(BaseModel):
    account_id: UUID
    side: Side
    amount: int
    currency: str
    account_posting_sequence: int


class EntryOut(BaseModel):
    """A posted entry. Every field is immutable, so the representation never changes.

    It is also what an idempotency key of a posting replays: the key keeps the entry's id and
    a replay renders the entry again (services/idempotency.py), so these bytes must be the
    same for the entry as posted and as read back. Hence metadata in key order (JSONB keeps
    its own order, not the client's) and `posted_at` in UTC (whatever the session's time
    zone). Changing this representation changes the replays of every key posted before:
    tests/unit/test_entry_response.py pins it."""

    id: UUID
    sequence: int = Field(description="Gap-free 0-based position in the tenant's hash chain")
    hash: str = Field(description="Hex SHA-256 chain hash of this entry")
    prev_hash: str = Field(description="Hex chain hash of the previous entry (or genesis)")
    posted_at: datetime
    effective_date: date
    type: str
    memo: str | None
    source: str | None
    source_id: str | None
    metadata: dict[str, str]
    reversal_of: UUID | None
    lines: list[LineOut]

    @classmethod
    def of(cls, entry: PostedEntry) -> EntryOut:
        return cls(
            id=entry.id,
            sequence=entry.sequence,
            hash=entry.hash.hex(),
            prev_hash=entry.prev_hash.hex(),
            posted_at=entry.posted_at.astimezone(UTC),
            effective_date=entry.effective_date,
            type=entry.type,
            memo=entry.memo,
            source=entry.source,
            source_id=entry.source_id,
            metadata=dict(sorted(entry.metadata.items())),
            reversal_of=entry.reversal_of,
            lines=[
                LineOut(
                    account_id=line.account_id,
                    side=line.side,
                    amount=line.amount_minor,
                    currency=line.currency,
                    account_posting_sequence=line.account_posting_sequence,
                )
                for line in entry.lines
            ],
        )


class BalanceOut(BaseModel):
    account_id: UUID
    currency: str
    debits_posted: int
    credits_posted: int
    balance: int = Field(description="Balance on the account's normal side, in minor units")
    posting_sequence: int = Field(
        description="How many postings (lines) of the account this balance includes"
    )
    as_of_sequence: int | None
    as_of: date | None

    @classmethod
    def of(cls, item: AccountBalance) -> BalanceOut:
        return cls(
            account_id=item.account.id,
            currency=item.account.currency,
            debits_posted=item.balance.debits_posted,
            credits_posted=item.balance.credits_posted,
            balance=item.signed,
            posting_sequence=item.balance.posting_sequence,
            as_of_sequence=item.as_of_sequence,
            as_of=item.as_of_date,
        )


class AccountLineOut(BaseModel):
    entry_id: UUID
    sequence: int
    line_number: int
    posted_at: datetime
    effective_date: date
    type: str
    memo: str | None
    side: Side
    amount: int
    currency: str
    account_posting_sequence: int
    debits_after: int
    credits_after: int

    @classmethod
    def of(cls, line: AccountLine) -> AccountLineOut:
        return cls(
            entry_id=line.entry_id,
            sequence=line.sequence,
            line_number=line.line_number,
            posted_at=line.posted_at,
            effective_date=line.effective_date,
            type=line.type,
            memo=line.memo,
            side=Side(line.side),
            amount=line.amount_minor,
            currency=line.currency,
            account_posting_sequence=line.account_posting_sequence,
            debits_after=line.debits_after,
            credits_after=line.credits_after,
        )


class AccountPage(BaseModel):
    data: list[AccountOut]
    next_cursor: str | None


class EntryPage(BaseModel):
    data: list[EntryOut]
    next_cursor: str | None


class AccountLinePage(BaseModel):
    data: list[AccountLineOut]
    next_cursor: str | None


class CurrencyTotalsOut(BaseModel):
    currency: str
    debits_posted: int
    credits_posted: int
    balanced: bool

    @classmethod
    def of(cls, totals: CurrencyTotals) -> CurrencyTotalsOut:
        return cls(
            currency=totals.currency,
            debits_posted=totals.debits_posted,
            credits_posted=totals.credits_posted,
            balanced=totals.debits_posted == totals.credits_posted,
        )


class TrialBalanceAccountOut(BaseModel):
    account_id: UUID
    code: str
    type: AccountType
    currency: str
    debits_posted: int
    credits_posted: int
    balance: int

    @classmethod
    def of(cls, item: AccountTotals) -> TrialBalanceAccountOut:
        return cls(
            account_id=item.account.id,
            code=item.account.code,
            type=item.account.type,
            currency=item.account.currency,
            debits_posted=item.balance.debits_posted,
            credits_posted=item.balance.credits_posted,
            balance=item.balance.signed_for(item.account.type),
        )


class TrialBalanceOut(BaseModel):
    balanced: bool = Field(description="Debits equal credits in every currency (all accounts)")
    currencies: list[CurrencyTotalsOut] = Field(description="Totals over all accounts")
    accounts: list[TrialBalanceAccountOut] = Field(description="One page, in code order")
    next_cursor: str | None


CHECKPOINTS_PATH = "/v1/checkpoints"


class CheckpointOut(BaseModel):
    """One checkpoint in a list: the summary, and the envelope exactly as it verifies."""

    seq: int
    tree_size: int
    root_hash: str = Field(description="Base64 RFC 9162 root over entries 0..tree_size-1")
    issued_at: datetime
    status: str = Field(description="signed, or pending while it waits for the signer")
    signed_at: datetime | None
    checkpoint: dict[str, Any] = Field(
        description="{body, signatures}: the signed checkpoint (no signatures while pending)"
    )

    @classmethod
    def of(cls, stored: StoredCheckpoint) -> CheckpointOut:
        return cls(
            seq=stored.seq,
            tree_size=stored.tree_size,
            root_hash=b64encode(stored.body.root_hash),
            issued_at=stored.body.issued_at,
            status=checkpoint_status(stored),
            signed_at=stored.signed_at,
            checkpoint=stored.envelope().to_json(),
        )


def checkpoint_status(stored: StoredCheckpoint) -> str:
    return "signed" if stored.is_signed else "pending"


class CheckpointPage(BaseModel):
    data: list[CheckpointOut]
    next_cursor: str | None


class CheckpointPendingOut(BaseModel):
    """202 of POST /v1/checkpoints: issued, but the signer is down; it will be signed later."""

    status: str = "pending"
    reason: str
    seq: int
    checkpoint: dict[str, Any]


class CheckpointRef(BaseModel):
    seq: int
    tree_size: int
    root_hash: str

    @classmethod
    def of(cls, stored: StoredCheckpoint) -> CheckpointRef:
        return cls(
            seq=stored.seq, tree_size=stored.tree_size, root_hash=b64encode(stored.body.root_hash)
        )


class ConsistencyOut(BaseModel):
    """RFC 9162 PROOF(from.tree_size, D[to.tree_size]), hashes in base64. Verify it with the
    sizes and roots of the two signed checkpoints, never with these copies."""

    from_: CheckpointRef = Field(alias="from", serialization_alias="from")
    to: CheckpointRef
    proof: list[str]


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is returned."""

    type: str
    title: str
    status: int
    code: str
    detail: str


# Problem documents: the HTTP status of every reject code. Here rather than in api/problems.py
# because a batch reports each refused entry as a problem document inside its 200 response, and
# `finance post --batch --json` prints the same results.

PROBLEM_TYPE_PREFIX = "urn:finance:problem:"

_STATUS: dict[str, int] = {
    RejectCode.VALIDATION_FAILED: 422,
    RejectCode.TOO_FEW_LINES: 422,
    RejectCode.TOO_MANY_LINES: 422,
    RejectCode.INVALID_AMOUNT: 422,
    RejectCode.UNKNOWN_CURRENCY: 422,
    RejectCode.UNBALANCED_ENTRY: 422,
    RejectCode.ACCOUNT_NOT_FOUND: 404,
    RejectCode.ACCOUNT_CLOSED: 422,
    RejectCode.CURRENCY_MISMATCH: 422,
    RejectCode.BALANCE_OVERFLOW: 422,
    RejectCode.OVERDRAFT: 422,
    RejectCode.ENTRY_NOT_FOUND: 404,
    RejectCode.ALREADY_REVERSED: 409,
    RejectCode.REVERSAL_NOT_REVERSIBLE: 409,
    RejectCode.ACCOUNT_CODE_EXISTS: 409,
    RejectCode.ACCOUNT_ALREADY_CLOSED: 409,
    RejectCode.TENANT_NOT_FOUND: 403,
    RejectCode.TENANT_EXISTS: 409,
    RejectCode.LEDGER_EMPTY: 409,
    RejectCode.CHECKPOINT_NOT_FOUND: 404,
    RejectCode.CHECKPOINT_NOT_SIGNED: 409,
    RejectCode.ENTRY_NOT_SEALED: 409,
    RejectCode.ENTRY_NOT_COVERED: 409,
    RejectCode.TOO_MANY_ENTRIES: 422,
    RejectCode.DUPLICATE_IDEMPOTENCY_KEY: 422,
    RejectCode.LINKED_CHAIN_OPEN: 422,
    RejectCode.LINKED_ENTRY_FAILED: 422,
    RejectCode.IDEMPOTENCY_KEY_REUSED: 409,
    RejectCode.IDEMPOTENCY_KEY_INVALID: 400,
    RejectCode.IDEMPOTENCY_KEY_MISSING: 400,
    RejectCode.INVOICE_NOT_FOUND: 404,
    RejectCode.TAX_CODE_NOT_FOUND: 404,
    RejectCode.INVOICE_VERSION_CONFLICT: 409,
    RejectCode.INVOICE_IS_DRAFT: 409,
    RejectCode.INVOICE_IS_OPEN: 409,
    RejectCode.INVOICE_IS_PAID: 409,
    RejectCode.INVOICE_IS_VOID: 409,
    RejectCode.INVOICE_IS_UNCOLLECTIBLE: 409,
    RejectCode.INVOICE_IS_DISCARDED: 409,
}

PROBLEM_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_for(code: RejectCode) -> int:
    return _STATUS.get(code, 422)


def problem_document(
    status: int, code: str, detail: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    standard: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": PROBLEM_TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    # Extension members never replace the standard ones (RFC 9457 section 3.2).
    return {**(extra or {}), **standard}


def rejection_document(exc: LedgerRejection) -> dict[str, Any]:
    return problem_document(status_for(exc.code), exc.code.value, exc.detail, exc.context or None)


class BatchResultOut(BaseModel):
    """What became of one entry: `entry` when created or replayed, `error` when refused."""

    index: int
    status: BatchStatus
    entry: EntryOut | None = None
    error: Problem | None = None


class BatchOut(BaseModel):
    results: list[BatchResultOut] = Field(description="One per entry, in request order")


def render_batch(results: list[BatchResult]) -> bytes:
    """The 200 body of a batch. A created or replayed entry is the very bytes a single post
    of it returns, spliced in as they are."""
    parts = [_render_result(index, result) for index, result in enumerate(results)]
    return b'{"results":[' + b",".join(parts) + b"]}"


def _render_result(index: int, result: BatchResult) -> bytes:
    head = f'{{"index":{index},"status":"{result.status.value}",'.encode()
    if result.rejection is not None:
        error = json.dumps(rejection_document(result.rejection), separators=(",", ":"))
        return head + b'"error":' + error.encode() + b"}"
    if result.body is None:
        raise ValueError(f"a {result.status.value} batch result without its entry")
    return head + b'"entry":' + result.body + b"}"


def entry_response(entry: PostedEntry) -> tuple[int, bytes]:
    """The response of a posting, as POST /v1/journal returns it and replays it under its key
    (rendered again from the entry: see EntryOut)."""
    return 201, render(EntryOut.of(entry))
