"""A tenant's invoicing configuration: the accounts invoices post to and the rules issuing
applies. Stored per tenant; required before the first invoice is issued."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from finance.domain.invoicing.fiscal import BANGLADESH, FiscalYearStart
from finance.domain.invoicing.invoice import IssueRules
from finance.domain.invoicing.postings import InvoiceAccounts


@dataclass(frozen=True)
class InvoiceSettings:
    accounts: InvoiceAccounts
    cash: UUID  # where payments land unless a payment names another account
    fiscal_year_start: FiscalYearStart = BANGLADESH
    rules: IssueRules = field(default_factory=IssueRules)

    @property
    def account_ids(self) -> list[UUID]:
        a = self.accounts
        return [
            a.receivable,
            a.revenue,
            a.vat_payable,
            a.sd_payable,
            a.customer_credit,
            a.bad_debt,
            self.cash,
        ]
