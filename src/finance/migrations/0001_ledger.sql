-- 0001: the double-entry ledger.
--
-- The database is the second line of defence behind the domain code (STYLE habit 5): every
-- invariant the service checks is checked again here, so no code path, bug or hand-typed SQL
-- can commit an unbalanced entry, change a posted one, or let a balance drift from its journal.
--
-- Roles: tables belong to the migrating role. The service runs as `finance_app` (SET ROLE on
-- every pooled connection), which may only SELECT and INSERT journal rows, and sees rows of the
-- tenant named by the transaction setting `finance.tenant_id` only (row-level security).

DO $$
BEGIN
    CREATE ROLE finance_app NOLOGIN;
EXCEPTION
    -- Several test databases in one cluster migrate at once; roles are cluster-wide.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Custom SQLSTATEs raised below (class FN) are mapped to reject codes by the adapter:
--   FN001 chain position or link does not match the ledger head
--   FN002 a reversal of a reversal
--   FN003 an unbalanced entry, an entry with fewer than two lines or a line count that does not
--         match, or lines whose copies of the entry's sequence and date differ from it
--   FN004 a posted row was updated or deleted
--   FN005 a line names an account that does not exist, is closed, or has another currency
--   FN006 a no-overdraft account would end a transaction overdrawn
--   FN007 a ledger trigger function was fired on a table it does not serve
--   FN008 an entry's posted_at is earlier than its predecessor's

CREATE FUNCTION finance_tenant() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('finance.tenant_id', true), '') $$;

-- SECURITY DEFINER trigger functions run as the owner, without row-level security. EXECUTE on
-- every function is revoked from PUBLIC below, so no role can attach them to a table of its
-- own; as a second guard each one also refuses to run for any table but the one it serves.
CREATE FUNCTION finance_require_table(fired_schema name, fired_table name, expected name)
    RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF fired_schema <> 'public' OR fired_table <> expected THEN
        RAISE EXCEPTION 'trigger function for % fired on %.%', expected, fired_schema, fired_table
            USING ERRCODE = 'FN007';
    END IF;
END
$$;

CREATE FUNCTION finance_forbid_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% on % is forbidden: posted ledger rows are immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'FN004';
END
$$;

CREATE TABLE tenants (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per tenant ledger: the serial point of its hash chain.
CREATE TABLE ledger_heads (
    tenant_id     text PRIMARY KEY REFERENCES tenants (id),
    created_at    timestamptz NOT NULL,
    genesis_hash  bytea NOT NULL CHECK (length(genesis_hash) = 32),
    next_sequence bigint NOT NULL DEFAULT 0 CHECK (next_sequence >= 0),
    head_hash     bytea NOT NULL CHECK (length(head_hash) = 32),
    -- posted_at of the newest entry: posting times never go backwards along the chain.
    head_posted_at timestamptz,
    CHECK (next_sequence > 0 OR head_hash = genesis_hash)
);

CREATE TABLE accounts (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL,
    code       text NOT NULL CHECK (length(code) BETWEEN 1 AND 128),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type       text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
    credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
    metadata   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL,
    closed_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    CHECK (NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits))
);

-- Posted totals per account. Only the journal-line trigger below writes them, so a balance is
-- by construction the sum of its lines. The limit flags are copied here for the no-overdraft
-- trigger, which checks at commit: a limit holds for the entry as a whole, whatever the order
-- of its lines (a wallet debited 30 and credited 30 in one entry never went below zero).
CREATE TABLE balances (
    tenant_id        text NOT NULL,
    account_id       uuid NOT NULL,
    currency         text NOT NULL,
    debits_posted    bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted   bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    posting_sequence bigint NOT NULL DEFAULT 0 CHECK (posting_sequence >= 0),
    debits_must_not_exceed_credits boolean NOT NULL,
    credits_must_not_exceed_debits boolean NOT NULL,
    PRIMARY KEY (tenant_id, account_id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

CREATE TABLE journal_entries (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 0),
    hash           bytea NOT NULL CHECK (length(hash) = 32),
    prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
    posted_at      timestamptz NOT NULL,
    effective_date date NOT NULL,
    type           text NOT NULL CHECK (type ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    memo           text,
    source         text,
    source_id      text,
    metadata       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    reversal_of    uuid,
    line_count     smallint NOT NULL CHECK (line_count >= 2),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sequence),
    FOREIGN KEY (tenant_id, reversal_of) REFERENCES journal_entries (tenant_id, id)
);
-- An entry is reversed at most once, even by two racing requests.
CREATE UNIQUE INDEX journal_entries_reversed_once
    ON journal_entries (tenant_id, reversal_of) WHERE reversal_of IS NOT NULL;
CREATE INDEX journal_entries_by_effective_date
    ON journal_entries (tenant_id, effective_date, sequence);
CREATE INDEX journal_entries_by_source
    ON journal_entries (tenant_id, source, source_id) WHERE source IS NOT NULL;

CREATE TABLE journal_lines (
    tenant_id      text NOT NULL,
    entry_id       uuid NOT NULL,
    line_number    smallint NOT NULL CHECK (line_number >= 0),
    account_id     uuid NOT NULL,
    side           text NOT NULL CHECK (side IN ('debit', 'credit')),
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    currency       text NOT NULL,
    entry_sequence bigint NOT NULL,
    effective_date date NOT NULL,
    -- Filled by the trigger from the balance row: the account's running state after this line.
    account_posting_sequence bigint NOT NULL,
    debits_after   bigint NOT NULL,
    credits_after  bigint NOT NULL,
    PRIMARY KEY (tenant_id, entry_id, line_number),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
-- An account's lines in posting order: statements, point-in-time balances, the account FK.
-- Unique: the trigger numbers each account's postings 1, 2, 3... and no two may share one.
CREATE UNIQUE INDEX journal_lines_by_account
    ON journal_lines (tenant_id, account_id, account_posting_sequence);

-- Events for later relay to a message bus; written in the posting transaction (outbox pattern).
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id),
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Idempotency keys are kept forever. A row is claimed (status_code NULL) at the start of the
-- request's transaction, which makes a concurrent request with the same key wait, and
-- completed with the response before commit; a completed row never changes again.
CREATE TABLE idempotency_keys (
    tenant_id     text NOT NULL REFERENCES tenants (id),
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    status_code   smallint,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (tenant_id, key),
    CHECK ((status_code IS NULL) = (completed_at IS NULL))
);

-- Triggers ----------------------------------------------------------------------------------

CREATE FUNCTION finance_open_balance() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'accounts');
    INSERT INTO balances (tenant_id, account_id, currency,
                          debits_must_not_exceed_credits, credits_must_not_exceed_debits)
    VALUES (NEW.tenant_id, NEW.id, NEW.currency,
            NEW.debits_must_not_exceed_credits, NEW.credits_must_not_exceed_debits);
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_open_balance AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION finance_open_balance();

-- Only the name, metadata and closing of an account may change; closing is final.
CREATE FUNCTION finance_guard_account_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF (NEW.tenant_id, NEW.id, NEW.code, NEW.type, NEW.currency, NEW.created_at,
        NEW.debits_must_not_exceed_credits, NEW.credits_must_not_exceed_debits)
       IS DISTINCT FROM
       (OLD.tenant_id, OLD.id, OLD.code, OLD.type, OLD.currency, OLD.created_at,
        OLD.debits_must_not_exceed_credits, OLD.credits_must_not_exceed_debits) THEN
        RAISE EXCEPTION 'only name, metadata and closed_at of an account can change'
            USING ERRCODE = 'FN004';
    END IF;
    IF OLD.closed_at IS NOT NULL AND NEW.closed_at IS DISTINCT FROM OLD.closed_at THEN
        RAISE EXCEPTION 'a closed account stays closed' USING ERRCODE = 'FN004';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER accounts_guard_update BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION finance_guard_account_update();

-- Each line moves its account's balance; the line records the running totals it produced.
CREATE FUNCTION finance_apply_line() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    account_currency text;
    account_closed   timestamptz;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_lines');
    SELECT currency, closed_at INTO account_currency, account_closed
      FROM accounts WHERE tenant_id = NEW.tenant_id AND id = NEW.account_id;
    IF NOT FOUND OR account_closed IS NOT NULL OR account_currency <> NEW.currency THEN
        RAISE EXCEPTION 'account % cannot take a % line', NEW.account_id, NEW.currency
            USING ERRCODE = 'FN005';
    END IF;
    UPDATE balances
       SET debits_posted    = debits_posted
                              + CASE WHEN NEW.side = 'debit' THEN NEW.amount_minor ELSE 0 END,
           credits_posted   = credits_posted
                              + CASE WHEN NEW.side = 'credit' THEN NEW.amount_minor ELSE 0 END,
           posting_sequence = posting_sequence + 1
     WHERE tenant_id = NEW.tenant_id AND account_id = NEW.account_id
     RETURNING posting_sequence, debits_posted, credits_posted
          INTO NEW.account_posting_sequence, NEW.debits_after, NEW.credits_after;
    RETURN NEW;
END
$$;
CREATE TRIGGER journal_lines_apply BEFORE INSERT ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION finance_apply_line();

-- An entry takes exactly the next position of its tenant's chain and links to the head.
CREATE FUNCTION finance_append_to_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_entries');
    UPDATE ledger_heads
       SET next_sequence = next_sequence + 1, head_hash = NEW.hash, head_posted_at = NEW.posted_at
     WHERE tenant_id = NEW.tenant_id
       AND next_sequence = NEW.sequence
       AND head_hash = NEW.prev_hash
       AND (head_posted_at IS NULL OR head_posted_at <= NEW.posted_at);
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM ledger_heads
                    WHERE tenant_id = NEW.tenant_id AND next_sequence = NEW.sequence
                      AND head_hash = NEW.prev_hash) THEN
            RAISE EXCEPTION 'entry % is posted before its predecessor', NEW.sequence
                USING ERRCODE = 'FN008';
        END IF;
        RAISE EXCEPTION 'entry % does not extend the chain of ledger %', NEW.sequence, NEW.tenant_id
            USING ERRCODE = 'FN001';
    END IF;
    IF NEW.reversal_of IS NOT NULL AND EXISTS (
        SELECT 1 FROM journal_entries
         WHERE tenant_id = NEW.tenant_id AND id = NEW.reversal_of AND reversal_of IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'entry % is a reversal and cannot be reversed', NEW.reversal_of
            USING ERRCODE = 'FN002';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER journal_entries_append BEFORE INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION finance_append_to_chain();

-- The serial point of a tenant's chain: lock the head row and read it. SECURITY DEFINER so the
-- service can lock the row without holding UPDATE rights on it; only the trigger above moves it.
CREATE FUNCTION finance_lock_chain_head(
    OUT next_sequence bigint, OUT head_hash bytea, OUT head_posted_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    SELECT h.next_sequence, h.head_hash, h.head_posted_at
      INTO next_sequence, head_hash, head_posted_at
      FROM ledger_heads h
     WHERE h.tenant_id = finance_tenant()
       FOR NO KEY UPDATE;
END
$$;

-- Lock the accounts a posting touches, in id order (so postings over the same accounts queue in
-- the same order and cannot deadlock), THEN read their balances in a second statement. One
-- statement that locks and reads would return the balance as of its own start, stale when it
-- had to wait for another posting to commit; the limit checks need the balance under the lock.
CREATE FUNCTION finance_lock_accounts(account_ids uuid[])
    RETURNS TABLE (
        tenant_id text, id uuid, code text, name text, type text, currency text,
        debits_must_not_exceed_credits boolean, credits_must_not_exceed_debits boolean,
        metadata jsonb, created_at timestamptz, closed_at timestamptz,
        debits_posted bigint, credits_posted bigint, posting_sequence bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM accounts a
      WHERE a.tenant_id = finance_tenant() AND a.id = ANY(account_ids)
      ORDER BY a.id
        FOR NO KEY UPDATE;
    RETURN QUERY
    SELECT a.tenant_id, a.id, a.code, a.name, a.type, a.currency,
           a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits,
           a.metadata, a.created_at, a.closed_at,
           b.debits_posted, b.credits_posted, b.posting_sequence
      FROM accounts a
      JOIN balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
     WHERE a.tenant_id = finance_tenant() AND a.id = ANY(account_ids)
     ORDER BY a.id;
END
$$;

-- Checked at commit, when all lines of the transaction are in: every entry touched balances per
-- currency and has as many lines as it claims (at least two).
CREATE FUNCTION finance_check_entry_balanced() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    entry_tenant text;
    entry_uuid   uuid;
    claimed      smallint;
    entry_seq    bigint;
    entry_date   date;
    found_lines  bigint;
    all_lines    bigint;
    bad_currency text;
BEGIN
    IF TG_TABLE_SCHEMA = 'public' AND TG_TABLE_NAME = 'journal_entries' THEN
        entry_tenant := NEW.tenant_id; entry_uuid := NEW.id;
    ELSE
        PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_lines');
        entry_tenant := NEW.tenant_id; entry_uuid := NEW.entry_id;
    END IF;
    SELECT line_count, sequence, effective_date INTO claimed, entry_seq, entry_date
      FROM journal_entries WHERE tenant_id = entry_tenant AND id = entry_uuid;
    -- Lines carry copies of their entry's sequence and date (point-in-time balances read them):
    -- a line whose copies disagree with its entry is not counted, so the entry fails.
    SELECT count(*) INTO found_lines
      FROM journal_lines
     WHERE tenant_id = entry_tenant AND entry_id = entry_uuid
       AND entry_sequence = entry_seq AND effective_date = entry_date;
    SELECT count(*) INTO all_lines
      FROM journal_lines WHERE tenant_id = entry_tenant AND entry_id = entry_uuid;
    IF claimed IS NULL OR found_lines <> claimed OR all_lines <> claimed OR found_lines < 2 THEN
        RAISE EXCEPTION 'entry % has % consistent lines of %, expected %',
            entry_uuid, found_lines, all_lines, claimed
            USING ERRCODE = 'FN003';
    END IF;
    SELECT currency INTO bad_currency
      FROM journal_lines
     WHERE tenant_id = entry_tenant AND entry_id = entry_uuid
     GROUP BY currency
    HAVING sum(CASE WHEN side = 'debit' THEN amount_minor::numeric
                    ELSE -amount_minor::numeric END) <> 0
     LIMIT 1;
    IF bad_currency IS NOT NULL THEN
        RAISE EXCEPTION 'entry % does not balance in %', entry_uuid, bad_currency
            USING ERRCODE = 'FN003';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION finance_check_entry_balanced();
CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION finance_check_entry_balanced();

CREATE FUNCTION finance_check_balance_limits() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    current balances%ROWTYPE;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'balances');
    -- Deferred: NEW is the row as of the event; the limit applies to the row as it commits.
    SELECT * INTO current FROM balances
     WHERE tenant_id = NEW.tenant_id AND account_id = NEW.account_id;
    IF (current.debits_must_not_exceed_credits AND current.debits_posted > current.credits_posted)
       OR (current.credits_must_not_exceed_debits
           AND current.credits_posted > current.debits_posted) THEN
        RAISE EXCEPTION 'account % would be overdrawn', NEW.account_id USING ERRCODE = 'FN006';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER balances_within_limits AFTER UPDATE ON balances
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.debits_must_not_exceed_credits OR NEW.credits_must_not_exceed_debits)
    EXECUTE FUNCTION finance_check_balance_limits();

CREATE FUNCTION finance_guard_idempotency() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.completed_at IS NOT NULL
       OR NEW.key <> OLD.key OR NEW.tenant_id <> OLD.tenant_id
       OR NEW.request_hash <> OLD.request_hash THEN
        RAISE EXCEPTION 'a completed idempotency record is permanent' USING ERRCODE = 'FN004';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER idempotency_keys_guard BEFORE UPDATE OR DELETE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION finance_guard_idempotency();

CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER accounts_undeletable BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER ledger_heads_undeletable BEFORE DELETE ON ledger_heads
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER tenants_undeletable BEFORE DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER journal_lines_no_truncate BEFORE TRUNCATE ON journal_lines
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER balances_no_truncate BEFORE TRUNCATE ON balances
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER idempotency_keys_no_truncate BEFORE TRUNCATE ON idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER ledger_heads_no_truncate BEFORE TRUNCATE ON ledger_heads
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER tenants_no_truncate BEFORE TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();

-- Row-level security ------------------------------------------------------------------------

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = finance_tenant());
ALTER TABLE ledger_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ledger_heads USING (tenant_id = finance_tenant());
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON accounts USING (tenant_id = finance_tenant());
ALTER TABLE balances ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON balances USING (tenant_id = finance_tenant());
ALTER TABLE journal_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journal_entries USING (tenant_id = finance_tenant());
ALTER TABLE journal_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journal_lines USING (tenant_id = finance_tenant());
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox USING (tenant_id = finance_tenant());
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys USING (tenant_id = finance_tenant());

-- Privileges: the service may read, append journal rows, and change only what may change ---

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO finance_app;
GRANT SELECT, INSERT ON tenants, ledger_heads, journal_entries, journal_lines TO finance_app;
GRANT SELECT, INSERT ON accounts TO finance_app;
GRANT UPDATE (name, metadata, closed_at) ON accounts TO finance_app;
GRANT SELECT ON balances TO finance_app;
GRANT SELECT, INSERT ON outbox TO finance_app;
GRANT UPDATE (published_at) ON outbox TO finance_app;
GRANT SELECT, INSERT ON idempotency_keys TO finance_app;
GRANT UPDATE (status_code, response_body, completed_at) ON idempotency_keys TO finance_app;
-- Functions are executable by PUBLIC by default: revoke that from all of them, so the SECURITY
-- DEFINER ones can be called (or attached to a table as triggers) only as granted here.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON FUNCTION finance_tenant(), finance_lock_chain_head(), finance_lock_accounts(uuid[])
    TO finance_app;
