"""Expected rejections of a ledger command, each with a stable code.

A rejection is not a bug: it is the ledger saying "no" to a request, with a reason a client can
act on. Codes never change meaning once published; the HTTP layer maps each to a status in one
place (`finance.api.problems`). A broken invariant (a bug) is a different thing: it raises
`InvariantViolation`, rolls the transaction back and is logged loudly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class RejectCode(enum.StrEnum):
    """Why a command was refused. Listed in order of precedence: when several apply, the first
    one in this order is reported (TigerBeetle's CreateTransferResult discipline)."""

    # Shape of the request.
    VALIDATION_FAILED = "validation_failed"
    TOO_FEW_LINES = "too_few_lines"
    TOO_MANY_LINES = "too_many_lines"
    INVALID_AMOUNT = "invalid_amount"
    UNKNOWN_CURRENCY = "unknown_currency"
    UNBALANCED_ENTRY = "unbalanced_entry"
    # Accounts the entry touches.
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_CLOSED = "account_closed"
    CURRENCY_MISMATCH = "currency_mismatch"
    BALANCE_OVERFLOW = "balance_overflow"
    OVERDRAFT = "overdraft"
    # Other resources.
    ENTRY_NOT_FOUND = "entry_not_found"
    ALREADY_REVERSED = "already_reversed"
    REVERSAL_NOT_REVERSIBLE = "reversal_not_reversible"
    ACCOUNT_CODE_EXISTS = "account_code_exists"
    ACCOUNT_ALREADY_CLOSED = "account_already_closed"
    TENANT_NOT_FOUND = "tenant_not_found"
    TENANT_EXISTS = "tenant_exists"
    # Checkpoints and proofs.
    LEDGER_EMPTY = "ledger_empty"
    CHECKPOINT_NOT_FOUND = "checkpoint_not_found"
    CHECKPOINT_NOT_SIGNED = "checkpoint_not_signed"
    ENTRY_NOT_SEALED = "entry_not_sealed"
    ENTRY_NOT_COVERED = "entry_not_covered"
    # Batches: the whole request (too many entries, a key twice, a chain without an end), and
    # the entries of a linked chain refused because another entry of it was.
    TOO_MANY_ENTRIES = "too_many_entries"
    DUPLICATE_IDEMPOTENCY_KEY = "duplicate_idempotency_key"
    LINKED_CHAIN_OPEN = "linked_chain_open"
    LINKED_ENTRY_FAILED = "linked_entry_failed"
    # Idempotency.
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_MISSING = "idempotency_key_missing"
    # Invoicing and tax (domain/invoicing): identifiers, tax codes and rates, invoice lines.
    INVALID_TIN = "invalid_tin"
    INVALID_BIN = "invalid_bin"
    LEGACY_BIN_REFUSED = "legacy_bin_refused"
    BUYER_BIN_REQUIRED = "buyer_bin_required"
    INVALID_TAX_CODE = "invalid_tax_code"
    TAX_CODE_NOT_FOUND = "tax_code_not_found"
    TAX_RATE_NOT_IN_FORCE = "tax_rate_not_in_force"
    INVALID_INVOICE_LINE = "invalid_invoice_line"
    INVALID_INVOICE = "invalid_invoice"
    INVALID_PAYMENT = "invalid_payment"
    INVOICE_NOT_FOUND = "invoice_not_found"
    INVOICE_VERSION_CONFLICT = "invoice_version_conflict"
    # An invoice command that its current state does not allow: the code names that state.
    INVOICE_IS_DRAFT = "invoice_is_draft"
    INVOICE_IS_OPEN = "invoice_is_open"
    INVOICE_IS_PAID = "invoice_is_paid"
    INVOICE_IS_VOID = "invoice_is_void"
    INVOICE_IS_UNCOLLECTIBLE = "invoice_is_uncollectible"
    INVOICE_IS_DISCARDED = "invoice_is_discarded"


class LedgerRejection(Exception):
    """A command the ledger refuses. `detail` is for humans; `code` is for programs."""

    def __init__(
        self, code: RejectCode, detail: str, *, context: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.context: dict[str, str] = dict(context or {})


class InvariantViolation(Exception):
    """Something that must never happen did. This is a bug, never a client error."""
