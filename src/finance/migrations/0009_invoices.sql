-- 0009: invoices (issue 6) as event streams, with their read model, gap-free numbers, the
-- tenant's tax codes and invoicing settings.
--
-- An invoice is the fold of its events (domain/invoicing/invoice.py). `invoice_events` is the
-- source of truth: append-only (no UPDATE, DELETE or TRUNCATE), one row per event, numbered
-- 1, 2, 3... per invoice; the primary key refuses a second event with the same number, which is
-- how a command decided against a stale version fails (optimistic concurrency). `invoices` is
-- the read model, projected from the events in the same transaction and rebuilt from them by
-- `finance invoices rebuild`; it is the only invoice table the service may update.
--
-- Numbers are gap-free per tenant, seller location and financial year: the counter row is
-- locked and bumped in the issuing transaction, so a number is used if and only if that
-- transaction commits.

CREATE TABLE invoice_settings (
    tenant_id              text PRIMARY KEY REFERENCES tenants (id),
    receivable_account     uuid NOT NULL,
    revenue_account        uuid NOT NULL,
    vat_payable_account    uuid NOT NULL,
    sd_payable_account     uuid NOT NULL,
    customer_credit_account uuid NOT NULL,
    bad_debt_account       uuid NOT NULL,
    cash_account           uuid NOT NULL,
    fiscal_year_start_month smallint NOT NULL DEFAULT 7 CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
    fiscal_year_start_day  smallint NOT NULL DEFAULT 1 CHECK (fiscal_year_start_day BETWEEN 1 AND 31),
    buyer_bin_from_minor   bigint CHECK (buyer_bin_from_minor >= 0),
    seller_bin_required    boolean NOT NULL DEFAULT true,
    payment_days_default   integer NOT NULL DEFAULT 30 CHECK (payment_days_default BETWEEN 0 AND 3650),
    updated_at             timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, receivable_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, revenue_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, vat_payable_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, sd_payable_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_credit_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, bad_debt_account) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, cash_account) REFERENCES accounts (tenant_id, id)
);

-- A tax code keeps every rate it ever had (`definition`: supply, dated rates, withdrawal), so an
-- invoice can always be recomputed under the rate of its issue date.
CREATE TABLE tax_codes (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    code       text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    definition jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

CREATE TABLE invoice_events (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    invoice_id  uuid NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    type        text NOT NULL CHECK (type ~ '^[A-Z][A-Za-z]{0,63}$'),
    data        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, version)
);
CREATE TRIGGER invoice_events_immutable BEFORE UPDATE OR DELETE ON invoice_events
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER invoice_events_no_truncate BEFORE TRUNCATE ON invoice_events
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();

CREATE TABLE invoices (
    tenant_id         text NOT NULL REFERENCES tenants (id),
    id                uuid NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    status            text NOT NULL CHECK (status IN
                          ('draft', 'open', 'paid', 'void', 'uncollectible', 'discarded')),
    payment_status    text NOT NULL CHECK (payment_status IN
                          ('unpaid', 'partially_paid', 'paid', 'overpaid')),
    number            text,
    location          text NOT NULL,
    fiscal_year       text,
    customer_name     text NOT NULL,
    customer_bin      text,
    currency          text NOT NULL,
    issue_date        date,
    due_date          date,
    total_minor       bigint NOT NULL CHECK (total_minor >= 0),
    paid_minor        bigint NOT NULL CHECK (paid_minor >= 0),
    outstanding_minor bigint NOT NULL CHECK (outstanding_minor >= 0),
    state             jsonb NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    -- The read model is never ahead of the stream it is projected from.
    FOREIGN KEY (tenant_id, id, version) REFERENCES invoice_events (tenant_id, invoice_id, version),
    CHECK ((number IS NULL) = (status IN ('draft', 'discarded')))
);
CREATE INDEX invoices_by_customer ON invoices (tenant_id, customer_name);
CREATE INDEX invoices_by_status ON invoices (tenant_id, status);
CREATE INDEX invoices_by_fiscal_year ON invoices (tenant_id, fiscal_year);
CREATE INDEX invoices_by_issue_date ON invoices (tenant_id, issue_date);

-- One series each for invoices, credit notes and debit notes.
CREATE TABLE invoice_counters (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    series      text NOT NULL CHECK (series IN ('invoice', 'credit_note', 'debit_note')),
    location    text NOT NULL,
    fiscal_year text NOT NULL,
    last_number integer NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (tenant_id, series, location, fiscal_year)
);
-- A counter only goes up, by one: a number once used is never handed out again.
CREATE FUNCTION finance_guard_invoice_counter() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.last_number <> OLD.last_number + 1
       OR (NEW.tenant_id, NEW.series, NEW.location, NEW.fiscal_year)
          IS DISTINCT FROM (OLD.tenant_id, OLD.series, OLD.location, OLD.fiscal_year) THEN
        RAISE EXCEPTION 'invoice counters only go up by one' USING ERRCODE = 'FN004';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER invoice_counters_guard BEFORE UPDATE OR DELETE ON invoice_counters
    FOR EACH ROW EXECUTE FUNCTION finance_guard_invoice_counter();

ALTER TABLE invoice_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_settings USING (tenant_id = finance_tenant());
ALTER TABLE tax_codes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tax_codes USING (tenant_id = finance_tenant());
ALTER TABLE invoice_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_events USING (tenant_id = finance_tenant());
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoices USING (tenant_id = finance_tenant());
ALTER TABLE invoice_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_counters USING (tenant_id = finance_tenant());

REVOKE ALL ON invoice_settings, tax_codes, invoice_events, invoices, invoice_counters FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON invoice_settings, tax_codes, invoices TO finance_app;
GRANT SELECT, INSERT ON invoice_events TO finance_app;
GRANT SELECT, INSERT, UPDATE (last_number) ON invoice_counters TO finance_app;
REVOKE ALL ON FUNCTION finance_guard_invoice_counter() FROM PUBLIC;
