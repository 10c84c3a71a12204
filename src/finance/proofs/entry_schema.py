"""The schema of an entry body read from an untrusted proof (docs/proofs.md section 3.2, as
checked by the verifiers of sections 5, 6 and 8): exactly the members `chain.entry_body` writes,
each of exactly its type.

The chain hash already binds the bytes, but a verifier must also refuse bodies that could be read
two ways: a number where an amount string belongs (`12.5` and `"1250"` hash differently, yet a
sloppy reader might take either), an unknown member a reader might ignore, a timestamp in another
spelling. Called once per entry of a 100,000-entry package, so it is one flat function of
precompiled checks rather than a tree of small ones.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from finance.proofs.chain import ENTRY_SCHEMA
from finance.proofs.errors import InvalidProof
from finance.proofs.strict_json import JSON_INT_MAX

ENTRY_KEYS: Final = frozenset(
    {
        "schema",
        "ledger_id",
        "entry_id",
        "id",
        "posted_at",
        "effective_date",
        "type",
        "memo",
        "source",
        "source_id",
        "reversal_of",
        "postings",
        "metadata",
    }
)
POSTING_KEYS: Final = frozenset({"account", "side", "amount", "currency"})
SIDES: Final = frozenset({"debit", "credit"})
# Amounts are positive bigints (1 .. 2^63 - 1) in minor units, written without leading zeros.
AMOUNT_MINOR_MAX: Final = 2**63 - 1
_AMOUNT_MAX_TEXT: Final = str(AMOUNT_MINOR_MAX)

_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT: Final = re.compile(r"[1-9][0-9]{0,18}")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


def check_entry_body(body: object, where: str) -> dict[str, Any]:
    """Return `body` if it is a well-formed `finance/entry/v1` body; otherwise raise InvalidProof
    naming the member, prefixed by `where` (e.g. "entries[5]")."""
    if type(body) is not dict:
        raise InvalidProof(f"{where} must be a JSON object")
    if body.keys() != ENTRY_KEYS:
        _raise_keys(body, ENTRY_KEYS, where)
    if body["schema"] != ENTRY_SCHEMA:
        raise InvalidProof(f"{where}.schema must be {ENTRY_SCHEMA!r}")
    entry_id = body["entry_id"]
    if type(entry_id) is not int or not 0 <= entry_id <= JSON_INT_MAX:
        raise InvalidProof(f"{where}.entry_id must be a JSON integer in [0, 2^53 - 1]")
    for name in ("ledger_id", "type"):
        value = body[name]
        if type(value) is not str or not value:
            raise InvalidProof(f"{where}.{name} must be a non-empty string")
    for name in ("memo", "source", "source_id"):
        value = body[name]
        if value is not None and type(value) is not str:
            raise InvalidProof(f"{where}.{name} must be a string or null")
    value = body["id"]
    if type(value) is not str or _UUID.fullmatch(value) is None:
        raise InvalidProof(f"{where}.id must be a lower-case UUID")
    value = body["reversal_of"]
    if value is not None and (type(value) is not str or _UUID.fullmatch(value) is None):
        raise InvalidProof(f"{where}.reversal_of must be a lower-case UUID or null")
    _check_times(body, where)
    _check_postings(body["postings"], where)
    metadata = body["metadata"]
    if type(metadata) is not dict or any(type(item) is not str for item in metadata.values()):
        raise InvalidProof(f"{where}.metadata must be an object of strings")
    return body


def _check_times(body: dict[str, Any], where: str) -> None:
    posted_at = body["posted_at"]
    try:
        if type(posted_at) is not str or _TIMESTAMP.fullmatch(posted_at) is None:
            raise ValueError
        datetime.fromisoformat(posted_at)  # the calendar: no 2026-02-30
    except ValueError:
        raise InvalidProof(f"{where}.posted_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from None
    effective = body["effective_date"]
    try:
        if type(effective) is not str or _DATE.fullmatch(effective) is None:
            raise ValueError
        date.fromisoformat(effective)
    except ValueError:
        raise InvalidProof(f"{where}.effective_date is not YYYY-MM-DD") from None


def _check_postings(postings: object, where: str) -> None:
    if type(postings) is not list or len(postings) < 2:
        raise InvalidProof(f"{where}.postings must be a list of at least two postings")
    # Debits minus credits per currency: a signed, chained entry that does not balance is still
    # not a ledger entry, and an auditor should hear about it from the verifier.
    net: dict[str, int] = {}
    for index, posting in enumerate(postings):
        if type(posting) is not dict or posting.keys() != POSTING_KEYS:
            if type(posting) is not dict:
                raise InvalidProof(f"{where}.postings[{index}] must be a JSON object")
            _raise_keys(posting, POSTING_KEYS, f"{where}.postings[{index}]")
        account, side = posting["account"], posting["side"]
        amount, currency = posting["amount"], posting["currency"]
        if type(account) is not str or _UUID.fullmatch(account) is None:
            raise InvalidProof(f"{where}.postings[{index}].account must be a lower-case UUID")
        if type(side) is not str or side not in SIDES:
            raise InvalidProof(f"{where}.postings[{index}].side must be 'debit' or 'credit'")
        if (
            type(amount) is not str
            or _AMOUNT.fullmatch(amount) is None
            or (len(amount) == len(_AMOUNT_MAX_TEXT) and amount > _AMOUNT_MAX_TEXT)
        ):
            raise InvalidProof(
                f"{where}.postings[{index}].amount must be a string of minor units "
                f"in 1..{AMOUNT_MINOR_MAX}"
            )
        if type(currency) is not str or _CURRENCY.fullmatch(currency) is None:
            raise InvalidProof(f"{where}.postings[{index}].currency must be 3 capital letters")
        signed = int(amount) if side == "debit" else -int(amount)
        net[currency] = net.get(currency, 0) + signed
    unbalanced = sorted(currency for currency, total in net.items() if total != 0)
    if unbalanced:
        raise InvalidProof(f"{where}: debits and credits differ in {', '.join(unbalanced)}")


def _raise_keys(obj: dict[str, Any], keys: frozenset[str], where: str) -> None:
    missing = sorted(keys - obj.keys())
    unknown = sorted(obj.keys() - keys)
    raise InvalidProof(f"{where}: missing fields {missing}, unknown fields {unknown}")
