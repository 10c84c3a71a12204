"""Unit tests for journal entries, booking and reversals (finance.domain.entries, .accounts)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest

from finance import limits
from finance.domain.accounts import Account, AccountSpec, AccountType, Balance, Side
from finance.domain.entries import (
    DEFAULT_TYPE,
    REVERSAL_TYPE,
    AccountState,
    EntryDraft,
    Line,
    LinePosting,
    PostedEntry,
    PostedLine,
    book,
    line_postings,
    reversal_draft,
)
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.money import AMOUNT_MINOR_MAX

TODAY = date(2025, 3, 1)
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
D, C = Side.DEBIT, Side.CREDIT


def account(
    currency: str = "USD",
    *,
    account_type: AccountType = AccountType.ASSET,
    closed: bool = False,
    no_debit_balance: bool = False,
    no_credit_balance: bool = False,
    account_id: UUID | None = None,
) -> Account:
    the_id = account_id or uuid4()
    return Account(
        id=the_id,
        tenant_id="t-test",
        code=f"acc-{the_id.hex[:8]}",
        name="Test account",
        type=account_type,
        currency=currency,
        debits_must_not_exceed_credits=no_debit_balance,
        credits_must_not_exceed_debits=no_credit_balance,
        closed=closed,
        metadata={},
        created_at=NOW,
    )


def states(
    *accounts: Account, balances: dict[UUID, Balance] | None = None
) -> dict[UUID, AccountState]:
    given = balances or {}
    return {a.id: AccountState(a, given.get(a.id, Balance(0, 0, 0))) for a in accounts}


def line(target: Account | UUID, side: Side, amount: int, currency: str = "USD") -> Line:
    account_id = target if isinstance(target, UUID) else target.id
    return Line(account_id, side, amount, currency)


def draft(*lines: Line, **fields: object) -> EntryDraft:
    return EntryDraft(lines=tuple(lines), effective_date=TODAY, **fields)  # type: ignore[arg-type]


def transfer(
    debit: Account | UUID, credit: Account | UUID, amount: int, currency: str = "USD"
) -> EntryDraft:
    return draft(line(debit, D, amount, currency), line(credit, C, amount, currency))


def rejection_code(run: Callable[[], object]) -> RejectCode:
    with pytest.raises(LedgerRejection) as caught:
        run()
    return caught.value.code


# Lines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -1, 2**63, True])
def test_line_refuses_bad_amounts(amount: int) -> None:
    assert rejection_code(lambda: Line(uuid4(), D, amount, "USD")) is RejectCode.INVALID_AMOUNT


@pytest.mark.parametrize("currency", ["usd", "ZZZ", "US", ""])
def test_line_refuses_unknown_currencies(currency: str) -> None:
    code = rejection_code(lambda: Line(uuid4(), D, 1, currency))
    assert code is RejectCode.UNKNOWN_CURRENCY


# Draft shape ----------------------------------------------------------------------------------


def test_a_simple_balanced_draft_constructs() -> None:
    a, b = uuid4(), uuid4()
    entry = transfer(a, b, 500)
    assert entry.type == DEFAULT_TYPE
    assert entry.metadata == {}
    assert entry.reversal_of is None
    assert entry.account_ids == sorted([a, b])


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_lines(count: int) -> None:
    lines = [line(uuid4(), D, 1)] * count
    assert rejection_code(lambda: draft(*lines)) is RejectCode.TOO_FEW_LINES


def test_too_many_lines() -> None:
    a, b = uuid4(), uuid4()
    half = (limits.LINES_PER_ENTRY_MAX + 2) // 2
    lines = [line(a, D, 1)] * half + [line(b, C, 1)] * half
    assert len(lines) == limits.LINES_PER_ENTRY_MAX + 2
    assert rejection_code(lambda: draft(*lines)) is RejectCode.TOO_MANY_LINES
    odd = [line(a, D, 1)] * 50 + [line(b, C, 1)] * 50 + [line(b, C, 1)]
    assert len(odd) == limits.LINES_PER_ENTRY_MAX + 1
    assert rejection_code(lambda: draft(*odd)) is RejectCode.TOO_MANY_LINES


def test_the_maximum_line_count_is_allowed() -> None:
    a, b = uuid4(), uuid4()
    half = limits.LINES_PER_ENTRY_MAX // 2
    entry = draft(*([line(a, D, 3)] * half + [line(b, C, 3)] * half))
    assert len(entry.lines) == limits.LINES_PER_ENTRY_MAX


def test_line_count_is_checked_before_balance() -> None:
    # A single line is also unbalanced; too_few_lines has precedence.
    assert rejection_code(lambda: draft(line(uuid4(), D, 5))) is RejectCode.TOO_FEW_LINES


def test_unbalanced_single_currency() -> None:
    with pytest.raises(LedgerRejection) as caught:
        draft(line(uuid4(), D, 100), line(uuid4(), C, 99))
    assert caught.value.code is RejectCode.UNBALANCED_ENTRY
    assert caught.value.context == {"currency": "USD"}
    assert "debits exceed the other side by 1" in caught.value.detail


def test_unbalanced_credits_heavier() -> None:
    with pytest.raises(LedgerRejection) as caught:
        draft(line(uuid4(), D, 7, "JPY"), line(uuid4(), C, 10, "JPY"))
    assert caught.value.code is RejectCode.UNBALANCED_ENTRY
    assert "JPY credits exceed the other side by 3" in caught.value.detail


@pytest.mark.parametrize("bad", ["USD", "EUR"])
def test_two_currencies_balanced_in_one_only_names_the_bad_currency(bad: str) -> None:
    good = "EUR" if bad == "USD" else "USD"
    lines = [
        line(uuid4(), D, 100, good),
        line(uuid4(), C, 100, good),
        line(uuid4(), D, 250, bad),
        line(uuid4(), C, 249, bad),
    ]
    for order in (lines, list(reversed(lines))):
        with pytest.raises(LedgerRejection) as caught:
            draft(*order)
        assert caught.value.code is RejectCode.UNBALANCED_ENTRY
        assert caught.value.context == {"currency": bad}
        assert bad in caught.value.detail
        assert good not in caught.value.detail


def test_currencies_do_not_offset_each_other() -> None:
    # 100 USD debit against 100 EUR credit: equal numbers, but two unbalanced currencies.
    with pytest.raises(LedgerRejection) as caught:
        draft(line(uuid4(), D, 100, "USD"), line(uuid4(), C, 100, "EUR"))
    assert caught.value.code is RejectCode.UNBALANCED_ENTRY
    assert caught.value.context == {"currency": "EUR"}  # the first, alphabetically


def test_two_balanced_currencies_construct() -> None:
    entry = draft(
        line(uuid4(), D, 100, "USD"),
        line(uuid4(), C, 100, "USD"),
        line(uuid4(), C, 3, "BHD"),
        line(uuid4(), D, 1, "BHD"),
        line(uuid4(), D, 2, "BHD"),
    )
    assert len(entry.lines) == 5


def test_balance_check_is_exact_for_huge_amounts() -> None:
    big = AMOUNT_MINOR_MAX
    entry = draft(
        line(uuid4(), D, big), line(uuid4(), D, big), line(uuid4(), C, big), line(uuid4(), C, big)
    )
    assert len(entry.lines) == 4
    with pytest.raises(LedgerRejection) as caught:
        draft(
            line(uuid4(), D, big),
            line(uuid4(), D, big),
            line(uuid4(), C, big),
            line(uuid4(), C, big - 1),
        )
    assert caught.value.code is RejectCode.UNBALANCED_ENTRY


@pytest.mark.parametrize(
    "entry_type",
    ["sale", "Sale", "1SALE", "_SALE", "SALE-1", "SALE ", "SALE\n", "", "A" * 33, "SALÉ"],
)
def test_bad_entry_type_is_refused(entry_type: str) -> None:
    a, b = uuid4(), uuid4()
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), type=entry_type))
    assert code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize("entry_type", ["SALE", "PAYOUT_2", "X", "A" * 32, REVERSAL_TYPE])
def test_good_entry_types_are_accepted(entry_type: str) -> None:
    entry = draft(line(uuid4(), D, 1), line(uuid4(), C, 1), type=entry_type)
    assert entry.type == entry_type


def test_memo_length_limit() -> None:
    a, b = uuid4(), uuid4()
    at_limit = "m" * limits.MEMO_CHARS_MAX
    assert draft(line(a, D, 1), line(b, C, 1), memo=at_limit).memo == at_limit
    too_long = at_limit + "m"
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), memo=too_long))
    assert code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize("field", ["memo", "source", "source_id"])
def test_nul_in_text_is_refused(field: str) -> None:
    a, b = uuid4(), uuid4()
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), **{field: "a\x00b"}))
    assert code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize("field", ["source", "source_id"])
def test_source_length_limit(field: str) -> None:
    a, b = uuid4(), uuid4()
    ok = draft(line(a, D, 1), line(b, C, 1), **{field: "s" * limits.SOURCE_CHARS_MAX})
    assert getattr(ok, field) == "s" * limits.SOURCE_CHARS_MAX
    too_long = "s" * (limits.SOURCE_CHARS_MAX + 1)
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), **{field: too_long}))
    assert code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize("field", ["memo", "source", "source_id"])
def test_text_that_is_not_valid_unicode_is_refused(field: str) -> None:
    # A lone surrogate (what os.fsdecode or surrogateescape produce from stray bytes) can be
    # neither canonicalized for the hash chain (rfc8785) nor stored by PostgreSQL, so an entry
    # holding one cannot be posted and the draft must refuse it.
    a, b = uuid4(), uuid4()
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), **{field: "x\ud800"}))
    assert code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize(
    "metadata",
    [
        {"k": 1},
        {"k": None},
        {"k": ["v"]},
        {1: "v"},
        {"": "v"},
        {"k" * (limits.METADATA_KEY_CHARS_MAX + 1): "v"},
        {"k": "v" * (limits.METADATA_VALUE_CHARS_MAX + 1)},
        {"k": "a\x00"},
        {"k\x00": "a"},
        {f"k{i}": "v" for i in range(limits.METADATA_KEYS_MAX + 1)},
    ],
)
def test_bad_metadata_is_refused(metadata: dict[object, object]) -> None:
    a, b = uuid4(), uuid4()
    code = rejection_code(lambda: draft(line(a, D, 1), line(b, C, 1), metadata=metadata))
    assert code is RejectCode.VALIDATION_FAILED


def test_metadata_at_the_limits_is_accepted_and_copied() -> None:
    metadata = {f"k{i:02d}": "v" * limits.METADATA_VALUE_CHARS_MAX for i in range(32)}
    assert len(metadata) == limits.METADATA_KEYS_MAX
    entry = draft(line(uuid4(), D, 1), line(uuid4(), C, 1), metadata=metadata)
    assert entry.metadata == metadata
    metadata["k00"] = "changed"
    assert entry.metadata["k00"] != "changed"


def test_account_ids_are_distinct_and_sorted() -> None:
    ids = [UUID(int=9), UUID(int=3), UUID(int=7)]
    entry = draft(
        line(ids[0], D, 2), line(ids[1], C, 1), line(ids[2], C, 1), line(ids[0], D, 1),
        line(ids[1], C, 1),
    )  # fmt: skip
    assert entry.account_ids == [UUID(int=3), UUID(int=7), UUID(int=9)]


# Booking: precedence --------------------------------------------------------------------------


def test_unknown_account_beats_closed_account_in_any_line_order() -> None:
    closed = account(closed=True)
    missing = uuid4()
    known = states(closed)
    for entry in (transfer(closed, missing, 10), transfer(missing, closed, 10)):
        with pytest.raises(LedgerRejection) as caught:
            book(entry, known)
        assert caught.value.code is RejectCode.ACCOUNT_NOT_FOUND
        assert caught.value.context == {"account_id": str(missing)}


def test_closed_beats_currency_mismatch_in_any_line_order() -> None:
    closed = account("USD", closed=True)
    euro = account("EUR")
    known = states(closed, euro)
    for entry in (transfer(closed, euro, 10), transfer(euro, closed, 10)):
        with pytest.raises(LedgerRejection) as caught:
            book(entry, known)
        assert caught.value.code is RejectCode.ACCOUNT_CLOSED
        assert caught.value.context == {"account_id": str(closed.id)}


def test_currency_mismatch_beats_overdraft_in_any_line_order() -> None:
    guarded = account("USD", no_debit_balance=True)  # a debit would overdraw it
    euro = account("EUR")
    known = states(guarded, euro)
    for entry in (transfer(guarded, euro, 10), transfer(euro, guarded, 10)):
        with pytest.raises(LedgerRejection) as caught:
            book(entry, known)
        assert caught.value.code is RejectCode.CURRENCY_MISMATCH
        assert caught.value.context == {"account_id": str(euro.id)}


def test_balance_overflow_beats_overdraft() -> None:
    guarded = account(no_credit_balance=True)  # a credit would overdraw it
    full = account()
    near = AMOUNT_MINOR_MAX - 5
    known = states(guarded, full, balances={full.id: Balance(near, 0, 1)})
    with pytest.raises(LedgerRejection) as caught:
        book(transfer(full, guarded, 10), known)
    assert caught.value.code is RejectCode.BALANCE_OVERFLOW
    assert caught.value.context == {"account_id": str(full.id)}


def test_account_not_found_when_no_state_at_all() -> None:
    code = rejection_code(lambda: book(transfer(uuid4(), uuid4(), 1), {}))
    assert code is RejectCode.ACCOUNT_NOT_FOUND


# Booking: limits and overflow -----------------------------------------------------------------


def test_debit_limit_refuses_an_overdraft_and_allows_exactly_zero() -> None:
    wallet = account(account_type=AccountType.LIABILITY, no_debit_balance=True)
    cash = account()
    known = states(wallet, cash, balances={wallet.id: Balance(0, 100, 1)})
    with pytest.raises(LedgerRejection) as caught:
        book(transfer(wallet, cash, 101), known)
    assert caught.value.code is RejectCode.OVERDRAFT
    assert caught.value.context == {"account_id": str(wallet.id)}
    assert "by 1 minor units" in caught.value.detail
    after = book(transfer(wallet, cash, 100), known)
    assert after[wallet.id] == Balance(100, 100, 2)


def test_credit_limit_refuses_an_overdraft_and_allows_exactly_zero() -> None:
    bank = account(account_type=AccountType.ASSET, no_credit_balance=True)
    equity = account(account_type=AccountType.EQUITY)
    known = states(bank, equity, balances={bank.id: Balance(50, 0, 4)})
    with pytest.raises(LedgerRejection) as caught:
        book(transfer(equity, bank, 51), known)
    assert caught.value.code is RejectCode.OVERDRAFT
    assert caught.value.context == {"account_id": str(bank.id)}
    after = book(transfer(equity, bank, 50), known)
    assert after[bank.id] == Balance(50, 50, 5)


def test_limits_apply_to_the_net_of_all_lines_of_the_entry() -> None:
    # Credit first then debit the same guarded account: the net is zero, so no overdraft,
    # whatever the order of the lines.
    wallet = account(no_debit_balance=True)
    other = account()
    known = states(wallet, other)
    for lines in (
        (line(wallet, C, 30), line(wallet, D, 30), line(other, D, 5), line(other, C, 5)),
        (line(wallet, D, 30), line(wallet, C, 30), line(other, C, 5), line(other, D, 5)),
    ):
        after = book(draft(*lines), known)
        assert after[wallet.id] == Balance(30, 30, 2)


def test_limits_of_untouched_flags_do_not_apply() -> None:
    # An account that forbids a debit balance may hold a credit balance of any size.
    wallet = account(no_debit_balance=True)
    cash = account()
    after = book(transfer(cash, wallet, 10**12), states(wallet, cash))
    assert after[wallet.id] == Balance(0, 10**12, 1)


def test_balance_overflow_near_the_bigint_maximum() -> None:
    full = account()
    other = account()
    near = AMOUNT_MINOR_MAX - 10
    known = states(full, other, balances={full.id: Balance(near, 0, 7)})
    after = book(transfer(full, other, 10), known)  # lands exactly on the maximum
    assert after[full.id] == Balance(AMOUNT_MINOR_MAX, 0, 8)
    with pytest.raises(LedgerRejection) as caught:
        book(transfer(full, other, 11), known)
    assert caught.value.code is RejectCode.BALANCE_OVERFLOW
    assert caught.value.context == {"account_id": str(full.id)}


def test_credit_side_overflow() -> None:
    full = account()
    other = account()
    known = states(full, other, balances={full.id: Balance(0, AMOUNT_MINOR_MAX, 3)})
    code = rejection_code(lambda: book(transfer(other, full, 1), known))
    assert code is RejectCode.BALANCE_OVERFLOW


def test_overflow_within_one_entry_on_one_account() -> None:
    a = account()
    b = account()
    half = AMOUNT_MINOR_MAX // 2 + 1
    entry = draft(line(a, D, half), line(a, D, half), line(b, C, half), line(b, C, half))
    assert rejection_code(lambda: book(entry, states(a, b))) is RejectCode.BALANCE_OVERFLOW


# Booking: results -----------------------------------------------------------------------------


def test_book_returns_after_balances_with_sequence_bumped_per_line() -> None:
    cash, fees, revenue, idle = account(), account(), account(), account()
    known = states(
        cash, fees, revenue, idle,
        balances={cash.id: Balance(1_000, 200, 5), revenue.id: Balance(0, 7, 1)},
    )  # fmt: skip
    entry = draft(
        line(cash, D, 97),
        line(fees, D, 3),
        line(revenue, C, 60),
        line(revenue, C, 40),
    )
    after = book(entry, known)
    assert after == {
        cash.id: Balance(1_097, 200, 6),
        fees.id: Balance(3, 0, 1),
        revenue.id: Balance(0, 107, 3),  # two lines: the sequence moves twice
    }
    assert idle.id not in after
    assert list(after) == sorted(after)


def test_book_does_not_change_its_inputs() -> None:
    a, b = account(), account()
    known = states(a, b, balances={a.id: Balance(1, 2, 3)})
    book(transfer(a, b, 5), known)
    assert known[a.id].balance == Balance(1, 2, 3)
    assert known[b.id].balance == Balance(0, 0, 0)


# Reversals ------------------------------------------------------------------------------------


def posted(
    lines: Sequence[tuple[UUID, Side, int, str]],
    *,
    reversal_of: UUID | None = None,
    sequence: int = 12,
) -> PostedEntry:
    return PostedEntry(
        id=uuid4(),
        tenant_id="t-test",
        sequence=sequence,
        hash=b"\x01" * 32,
        prev_hash=b"\x00" * 32,
        posted_at=NOW,
        effective_date=TODAY,
        type="SALE",
        memo="original",
        source="shop",
        source_id="order-1",
        metadata={"k": "v"},
        reversal_of=reversal_of,
        lines=tuple(
            PostedLine(*ln, account_posting_sequence=i + 1, debits_after=0, credits_after=0)
            for i, ln in enumerate(lines)
        ),
    )


def test_reversal_swaps_sides_and_links_the_original() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    original = posted([(a, D, 100, "USD"), (b, C, 60, "USD"), (c, C, 40, "USD")])
    mirror = reversal_draft(original, effective_date=date(2025, 4, 1), memo=None)
    assert [(ln.account_id, ln.side, ln.amount_minor, ln.currency) for ln in mirror.lines] == [
        (a, C, 100, "USD"),
        (b, D, 60, "USD"),
        (c, D, 40, "USD"),
    ]
    assert mirror.reversal_of == original.id
    assert mirror.type == REVERSAL_TYPE
    assert mirror.effective_date == date(2025, 4, 1)
    assert mirror.memo == "Reversal of entry 12"
    assert (mirror.source, mirror.source_id) == ("shop", "order-1")
    assert mirror.metadata == {}


def test_reversal_keeps_a_given_memo() -> None:
    original = posted([(uuid4(), D, 1, "JPY"), (uuid4(), C, 1, "JPY")])
    assert reversal_draft(original, effective_date=TODAY, memo="oops").memo == "oops"
    assert reversal_draft(original, effective_date=TODAY, memo="").memo == ""


def test_reversal_undoes_the_original_when_booked() -> None:
    a, b = account(), account()
    known = states(a, b, balances={a.id: Balance(10, 3, 2)})
    entry = transfer(a, b, 25)
    after = book(entry, known)
    original = posted(
        [(ln.account_id, ln.side, ln.amount_minor, ln.currency) for ln in entry.lines]
    )
    mirror = reversal_draft(original, effective_date=TODAY, memo=None)
    final = book(mirror, {k: AccountState(s.account, after[k]) for k, s in known.items()})
    for account_id, state in known.items():
        before = state.balance
        assert (
            final[account_id].debits_posted - final[account_id].credits_posted
            == before.debits_posted - before.credits_posted
        )
        assert final[account_id].posting_sequence == before.posting_sequence + 2


def test_a_reversal_is_not_reversible() -> None:
    original = posted([(uuid4(), D, 5, "USD"), (uuid4(), C, 5, "USD")], reversal_of=uuid4())
    code = rejection_code(lambda: reversal_draft(original, effective_date=TODAY, memo=None))
    assert code is RejectCode.REVERSAL_NOT_REVERSIBLE


# Sides, types and balances --------------------------------------------------------------------


def test_side_opposite() -> None:
    assert Side.DEBIT.opposite is Side.CREDIT
    assert Side.CREDIT.opposite is Side.DEBIT
    for side in Side:
        assert side.opposite.opposite is side


@pytest.mark.parametrize(
    ("account_type", "side"),
    [
        (AccountType.ASSET, Side.DEBIT),
        (AccountType.EXPENSE, Side.DEBIT),
        (AccountType.LIABILITY, Side.CREDIT),
        (AccountType.EQUITY, Side.CREDIT),
        (AccountType.REVENUE, Side.CREDIT),
    ],
)
def test_normal_side(account_type: AccountType, side: Side) -> None:
    assert account_type.normal_side is side


@pytest.mark.parametrize(
    ("account_type", "signed"),
    [
        (AccountType.ASSET, 70),
        (AccountType.EXPENSE, 70),
        (AccountType.LIABILITY, -70),
        (AccountType.EQUITY, -70),
        (AccountType.REVENUE, -70),
    ],
)
def test_balance_signed_for(account_type: AccountType, signed: int) -> None:
    assert Balance(100, 30, 2).signed_for(account_type) == signed
    assert Balance(30, 100, 2).signed_for(account_type) == -signed
    assert Balance(5, 5, 2).signed_for(account_type) == 0


# Account specs --------------------------------------------------------------------------------


def spec(**fields: object) -> AccountSpec:
    values: dict[str, object] = {
        "code": "assets:cash",
        "name": "Cash",
        "type": AccountType.ASSET,
        "currency": "USD",
    }
    values.update(fields)
    return AccountSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "code", ["1000", "assets:cash", "A.b_c/d-e", "x", "a" * limits.ACCOUNT_CODE_CHARS_MAX]
)
def test_account_spec_accepts_good_codes(code: str) -> None:
    assert spec(code=code).code == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "a b",
        "-cash",
        ":cash",
        ".cash",
        "cash$",
        "cash\n",  # the database CHECK would refuse it: a 500 instead of a 422
        "\ncash",
        "cash\x00",
        "café",
        "a" * (limits.ACCOUNT_CODE_CHARS_MAX + 1),
    ],
)
def test_account_spec_refuses_bad_codes(code: str) -> None:
    assert rejection_code(lambda: spec(code=code)) is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize("name", ["", "   ", "n" * (limits.NAME_CHARS_MAX + 1), "a\x00b"])
def test_account_spec_refuses_bad_names(name: str) -> None:
    assert rejection_code(lambda: spec(name=name)) is RejectCode.VALIDATION_FAILED


def test_account_spec_refuses_unknown_currency() -> None:
    assert rejection_code(lambda: spec(currency="usd")) is RejectCode.UNKNOWN_CURRENCY


def test_account_spec_refuses_both_limit_flags() -> None:
    code = rejection_code(
        lambda: spec(debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True)
    )
    assert code is RejectCode.VALIDATION_FAILED
    assert spec(debits_must_not_exceed_credits=True).debits_must_not_exceed_credits
    assert spec(credits_must_not_exceed_debits=True).credits_must_not_exceed_debits


def test_account_spec_checks_metadata() -> None:
    assert rejection_code(lambda: spec(metadata={"k": 1})) is RejectCode.VALIDATION_FAILED
    assert spec(metadata={"k": "v"}).metadata == {"k": "v"}


def test_account_spec_refuses_a_name_that_is_not_valid_unicode() -> None:
    # `finance accounts create --name` with a non-UTF-8 argument arrives as "\udcff"
    # (surrogateescape); PostgreSQL cannot store it, so the spec must refuse it up front.
    assert rejection_code(lambda: spec(name="Cash \udcff")) is RejectCode.VALIDATION_FAILED


def test_line_postings_run_each_accounts_totals_in_line_order() -> None:
    """The running state the database checks line by line: an account hit twice in one entry
    takes two consecutive posting numbers, the second on top of the first."""
    cash, fees, sales = account(), account(), account(account_type=AccountType.REVENUE)
    given = states(cash, fees, sales, balances={cash.id: Balance(500, 200, 7)})
    entry = draft(line(cash, D, 100), line(sales, C, 130), line(cash, C, 20), line(fees, D, 50))
    assert line_postings(entry, given) == (
        LinePosting(sequence=8, debits_after=600, credits_after=200),
        LinePosting(sequence=1, debits_after=0, credits_after=130),
        LinePosting(sequence=9, debits_after=600, credits_after=220),
        LinePosting(sequence=1, debits_after=50, credits_after=0),
    )
