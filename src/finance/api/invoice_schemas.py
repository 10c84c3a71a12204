"""Request and response bodies of invoices, tax codes and invoicing settings.

Quantities, percentages and rates are decimal strings ("1.5", "15"), never JSON numbers, so
that nothing passes through a float; amounts are integers of minor units.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from finance.api.schemas import IsoDate
from finance.domain.invoicing.figures import LINES_PER_INVOICE_MAX, LineFigures
from finance.domain.invoicing.fiscal import FiscalYearStart
from finance.domain.invoicing.invoice import (
    TEXT_CHARS_MAX,
    Header,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    IssueRules,
    Note,
    NoteKind,
    Party,
    PaymentRecorded,
    PaymentStatus,
)
from finance.domain.invoicing.postings import InvoiceAccounts
from finance.domain.invoicing.settings import InvoiceSettings
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate
from finance.domain.invoicing.tax_ids import Bin, Tin
from finance.domain.money import AMOUNT_MINOR_MAX

Text = Annotated[StrictStr, Field(min_length=1, max_length=TEXT_CHARS_MAX)]
DecimalText = Annotated[
    StrictStr, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$", examples=["1.5", "15"])
]
Minor = Annotated[StrictInt, Field(ge=0, le=AMOUNT_MINOR_MAX)]
CurrencyCode = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$", examples=["BDT"])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyIn(_In):
    name: Text
    address: Text
    tin: Annotated[StrictStr, Field(max_length=32)] | None = None
    bin: Annotated[StrictStr, Field(max_length=32)] | None = None

    def to_party(self) -> Party:
        return Party(
            self.name,
            self.address,
            None if self.tin is None else Tin.parse(self.tin),
            None if self.bin is None else Bin.parse(self.bin),
        )


class InvoiceLineIn(_In):
    description: Text
    unit: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    quantity: DecimalText
    unit_price_minor: Minor
    tax_code: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    discount_minor: Minor = 0
    discount_percent: DecimalText | None = None

    def to_line(self) -> InvoiceLine:
        return InvoiceLine(
            self.description,
            self.unit,
            Decimal(self.quantity),
            self.unit_price_minor,
            self.tax_code,
            self.discount_minor,
            None if self.discount_percent is None else Decimal(self.discount_percent),
        )


class InvoiceDraftIn(_In):
    customer: PartyIn
    seller: PartyIn
    location: Annotated[StrictStr, Field(min_length=1, max_length=32, examples=["DHK"])]
    currency: CurrencyCode
    issue_date: IsoDate | None = None
    due_date: IsoDate | None = None
    payment_terms: Text | None = None
    destination: Text | None = None
    prices_include_tax: StrictBool = False
    replaces: UUID | None = Field(default=None, description="A void invoice this one replaces")
    lines: Annotated[list[InvoiceLineIn], Field(max_length=LINES_PER_INVOICE_MAX)] = Field(
        default_factory=list
    )

    def to_header(self) -> Header:
        return Header(
            customer=self.customer.to_party(),
            seller=self.seller.to_party(),
            location=self.location,
            currency=self.currency,
            due_date=self.due_date,
            issue_date=self.issue_date,
            payment_terms=self.payment_terms,
            destination=self.destination,
            prices_include_tax=self.prices_include_tax,
            replaces=self.replaces,
        )

    def to_lines(self) -> list[InvoiceLine]:
        return [line.to_line() for line in self.lines]


class NoteIn(_In):
    reason: Text
    lines: Annotated[list[InvoiceLineIn], Field(min_length=1, max_length=LINES_PER_INVOICE_MAX)]

    def to_lines(self) -> list[InvoiceLine]:
        return [line.to_line() for line in self.lines]


class PaymentIn(_In):
    amount_minor: Annotated[StrictInt, Field(gt=0, le=AMOUNT_MINOR_MAX)]
    received_on: IsoDate
    payment_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="The provider's id of the payment; the Idempotency-Key if none"
    )
    cash_account_id: UUID | None = None


class PartyOut(BaseModel):
    name: str
    address: str
    tin: str | None
    bin: str | None
    bin_legacy: bool

    @classmethod
    def of(cls, party: Party) -> PartyOut:
        return cls(
            name=party.name,
            address=party.address,
            tin=None if party.tin is None else str(party.tin),
            bin=None if party.bin is None else str(party.bin),
            bin_legacy=party.bin is not None and party.bin.legacy,
        )


class LevyOut(BaseModel):
    percent: str | None
    per_unit_minor: int | None

    @classmethod
    def of(cls, levy: Levy | None) -> LevyOut | None:
        if levy is None:
            return None
        percent = None if levy.percent is None else format(levy.percent.normalize(), "f")
        return cls(percent=percent, per_unit_minor=levy.per_unit_minor)


class InvoiceLineOut(BaseModel):
    description: str
    unit: str
    quantity: str
    unit_price_minor: int
    tax_code: str
    discount_minor: int
    discount_percent: str | None
    # Frozen when the invoice is issued; absent on a draft.
    gross_minor: int | None = None
    value_minor: int | None = None
    sd: LevyOut | None = None
    sd_minor: int | None = None
    vat: LevyOut | None = None
    vat_minor: int | None = None
    total_minor: int | None = None
    supply: Supply | None = None

    @classmethod
    def of(cls, line: InvoiceLine, figures: LineFigures | None) -> InvoiceLineOut:
        out = cls(
            description=line.description,
            unit=line.unit,
            quantity=format(line.quantity.normalize(), "f"),
            unit_price_minor=line.unit_price_minor,
            tax_code=line.tax_code,
            discount_minor=line.discount_minor,
            discount_percent=None
            if line.discount_percent is None
            else format(line.discount_percent.normalize(), "f"),
        )
        if figures is None:
            return out
        return out.model_copy(
            update={
                "discount_minor": figures.discount_minor,
                "gross_minor": figures.gross_minor,
                "value_minor": figures.value_minor,
                "sd": LevyOut.of(figures.rate.sd),
                "sd_minor": figures.sd_minor,
                "vat": LevyOut.of(figures.rate.vat),
                "vat_minor": figures.vat_minor,
                "total_minor": figures.total_minor,
                "supply": figures.supply,
            }
        )


class NoteOut(BaseModel):
    kind: NoteKind
    number: str
    reason: str
    issued_at: datetime
    lines: list[InvoiceLineOut]
    value_minor: int
    sd_minor: int
    vat_minor: int
    total_minor: int
    to_receivable_minor: int
    refund_minor: int
    entry_id: UUID

    @classmethod
    def of(cls, note: Note) -> NoteOut:
        f = note.figures
        return cls(
            kind=note.kind,
            number=note.number,
            reason=note.reason,
            issued_at=note.at,
            lines=[InvoiceLineOut.of(ln, lf) for ln, lf in zip(note.lines, f.lines, strict=True)],
            value_minor=f.value_minor,
            sd_minor=f.sd_minor,
            vat_minor=f.vat_minor,
            total_minor=f.total_minor,
            to_receivable_minor=note.to_receivable_minor,
            refund_minor=note.refund_minor,
            entry_id=note.entry_id,
        )


class PaymentOut(BaseModel):
    payment_id: str
    amount_minor: int
    received_on: date
    recorded_at: datetime
    entry_id: UUID

    @classmethod
    def of(cls, payment: PaymentRecorded) -> PaymentOut:
        return cls(
            payment_id=payment.payment_id,
            amount_minor=payment.amount_minor,
            received_on=payment.received_on,
            recorded_at=payment.at,
            entry_id=payment.entry_id,
        )


class InvoiceOut(BaseModel):
    id: UUID
    version: int
    status: InvoiceStatus
    payment_status: PaymentStatus
    number: str | None
    fiscal_year: str | None
    location: str
    currency: str
    customer: PartyOut
    seller: PartyOut
    issue_date: date | None
    due_date: date | None
    payment_terms: str | None
    destination: str | None
    prices_include_tax: bool
    lines: list[InvoiceLineOut]
    value_minor: int
    sd_minor: int
    vat_minor: int
    total_minor: int
    paid_minor: int
    outstanding_minor: int
    credit_minor: int
    written_off_minor: int
    issued_at: datetime | None
    credit_note_number: str | None
    voided_at: datetime | None
    replaces: UUID | None
    credited_minor: int
    debited_minor: int
    due_minor: int
    refund_minor: int
    notes: list[NoteOut]
    payments: list[PaymentOut]

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceOut:
        header, figures = invoice.header, invoice.figures
        line_figures: list[LineFigures | None] = (
            list(figures.lines) if figures is not None else [None] * len(invoice.lines)
        )
        return cls(
            id=invoice.id,
            version=invoice.version,
            status=invoice.status,
            payment_status=invoice.payment_status,
            number=invoice.number,
            fiscal_year=invoice.fiscal_year,
            location=header.location,
            currency=header.currency,
            customer=PartyOut.of(header.customer),
            seller=PartyOut.of(header.seller),
            issue_date=invoice.issue_date or header.issue_date,
            due_date=invoice.due_date or header.due_date,
            payment_terms=header.payment_terms,
            destination=header.destination,
            prices_include_tax=header.prices_include_tax,
            lines=[
                InvoiceLineOut.of(line, f)
                for line, f in zip(invoice.lines, line_figures, strict=True)
            ],
            value_minor=0 if figures is None else figures.value_minor,
            sd_minor=0 if figures is None else figures.sd_minor,
            vat_minor=0 if figures is None else figures.vat_minor,
            total_minor=invoice.total_minor,
            paid_minor=invoice.paid_minor,
            outstanding_minor=invoice.outstanding_minor,
            credit_minor=invoice.credit_minor,
            written_off_minor=invoice.written_off_minor,
            issued_at=invoice.issued_at,
            credit_note_number=invoice.credit_note_number,
            voided_at=invoice.voided_at,
            replaces=header.replaces,
            credited_minor=invoice.credited_minor,
            debited_minor=invoice.debited_minor,
            due_minor=invoice.due_minor,
            refund_minor=invoice.refund_minor,
            notes=[NoteOut.of(note) for note in invoice.notes],
            payments=[PaymentOut.of(payment) for payment in invoice.payments],
        )


class InvoiceSummaryOut(BaseModel):
    id: UUID
    version: int
    status: InvoiceStatus
    payment_status: PaymentStatus
    number: str | None
    fiscal_year: str | None
    location: str
    customer_name: str
    customer_bin: str | None
    currency: str
    issue_date: date | None
    due_date: date | None
    total_minor: int
    paid_minor: int
    outstanding_minor: int
    updated_at: datetime


class InvoicePage(BaseModel):
    data: list[InvoiceSummaryOut]
    next_cursor: str | None


class LevyIn(_In):
    percent: DecimalText | None = None
    per_unit_minor: Minor | None = None

    def to_levy(self) -> Levy:
        percent = None if self.percent is None else Decimal(self.percent)
        return Levy(percent, self.per_unit_minor)


class TaxRateIn(_In):
    valid_from: IsoDate
    vat: LevyIn | None
    sd: LevyIn | None = None


class TaxCodeIn(_In):
    name: Text
    supply: Supply
    rates: Annotated[list[TaxRateIn], Field(min_length=1, max_length=100)]
    withdrawn_on: IsoDate | None = None

    def to_code(self, code: str) -> TaxCode:
        rates = tuple(
            TaxRate(
                rate.valid_from,
                None if rate.vat is None else rate.vat.to_levy(),
                None if rate.sd is None else rate.sd.to_levy(),
            )
            for rate in self.rates
        )
        return TaxCode(code, self.name, self.supply, rates, self.withdrawn_on)


class TaxRateOut(BaseModel):
    valid_from: IsoDate
    vat: LevyOut | None
    sd: LevyOut | None


class TaxCodeOut(BaseModel):
    code: str
    name: str
    supply: Supply
    rates: list[TaxRateOut]
    withdrawn_on: date | None

    @classmethod
    def of(cls, code: TaxCode) -> TaxCodeOut:
        return cls(
            code=code.code,
            name=code.name,
            supply=code.supply,
            rates=[
                TaxRateOut(valid_from=r.valid_from, vat=LevyOut.of(r.vat), sd=LevyOut.of(r.sd))
                for r in code.rates
            ],
            withdrawn_on=code.withdrawn_on,
        )


class TaxCodeList(BaseModel):
    data: list[TaxCodeOut]


class InvoiceSettingsIn(_In):
    receivable_account_id: UUID
    revenue_account_id: UUID
    vat_payable_account_id: UUID
    sd_payable_account_id: UUID
    customer_credit_account_id: UUID
    bad_debt_account_id: UUID
    cash_account_id: UUID
    fiscal_year_start_month: Annotated[StrictInt, Field(ge=1, le=12)] = 7
    fiscal_year_start_day: Annotated[StrictInt, Field(ge=1, le=31)] = 1
    buyer_bin_from_minor: Minor | None = None
    seller_bin_required: StrictBool = True
    payment_days_default: Annotated[StrictInt, Field(ge=0, le=3650)] = 30

    def to_settings(self) -> InvoiceSettings:
        return InvoiceSettings(
            accounts=InvoiceAccounts(
                receivable=self.receivable_account_id,
                revenue=self.revenue_account_id,
                vat_payable=self.vat_payable_account_id,
                sd_payable=self.sd_payable_account_id,
                customer_credit=self.customer_credit_account_id,
                bad_debt=self.bad_debt_account_id,
            ),
            cash=self.cash_account_id,
            fiscal_year_start=FiscalYearStart(
                self.fiscal_year_start_month, self.fiscal_year_start_day
            ),
            rules=IssueRules(
                buyer_bin_from_minor=self.buyer_bin_from_minor,
                seller_bin_required=self.seller_bin_required,
                payment_days_default=self.payment_days_default,
            ),
        )

    @classmethod
    def of(cls, settings: InvoiceSettings) -> InvoiceSettingsIn:
        a, rules = settings.accounts, settings.rules
        return cls(
            receivable_account_id=a.receivable,
            revenue_account_id=a.revenue,
            vat_payable_account_id=a.vat_payable,
            sd_payable_account_id=a.sd_payable,
            customer_credit_account_id=a.customer_credit,
            bad_debt_account_id=a.bad_debt,
            cash_account_id=settings.cash,
            fiscal_year_start_month=settings.fiscal_year_start.month,
            fiscal_year_start_day=settings.fiscal_year_start.day,
            buyer_bin_from_minor=rules.buyer_bin_from_minor,
            seller_bin_required=rules.seller_bin_required,
            payment_days_default=rules.payment_days_default,
        )


def summary_of(row: dict[str, Any]) -> InvoiceSummaryOut:
    return InvoiceSummaryOut.model_validate(row, from_attributes=False)
