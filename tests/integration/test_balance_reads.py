"""The current balance is read in one statement: its latency is mostly round trips."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType, Balance
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.ledger import AccountBalance
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import new_tenant, open_account, transfer


def test_the_current_balance_is_one_statement(
    store: PostgresLedgerStore, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    transfer(store, tenant, cash, sales, 125)
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(bytes(query).decode() if isinstance(query, bytes) else str(query))
        return execute(cur, query, *args, **kwargs)

    def read(tx: LedgerTransaction) -> AccountBalance:
        monkeypatch.setattr(psycopg.Cursor, "execute", counting)
        try:
            return ledger.account_balance(tx, cash)
        finally:
            monkeypatch.setattr(psycopg.Cursor, "execute", execute)

    found = store(tenant, read)

    assert len(sent) == 1, sent
    assert found.account.id == cash
    assert found.balance == Balance(125, 0, 1)
    assert found.signed == 125


def test_a_missing_or_foreign_account_is_not_found(store: PostgresLedgerStore, tenant: str) -> None:
    other = new_tenant(store)
    theirs = open_account(store, other, "cash", AccountType.ASSET)
    for account_id in (uuid.uuid4(), theirs):

        def read(tx: LedgerTransaction, account_id: uuid.UUID = account_id) -> AccountBalance:
            return ledger.account_balance(tx, account_id)

        with pytest.raises(LedgerRejection) as refused:
            store(tenant, read)
        assert refused.value.code is RejectCode.ACCOUNT_NOT_FOUND
