-- Posting writes the chain head and each touched balance once per statement, not once per row.
--
-- Why: the row triggers of 0001 moved the chain head for every entry and a balance for every
-- line. A batch of 1,000 entries updated its tenant's head row 1,000 times in one transaction,
-- each update a new version of the row that the next update walks past (quadratic in the batch
-- size), and a hot account's balance the same way; a single posting ran a dozen trigger
-- queries at COMMIT while holding its tenant's chain head (docs/performance.md).
--
-- Now the writer supplies what the line trigger used to fill in: each line's running state of
-- its account (posting number, debits and credits after the line), which the service knows
-- because it computes them under the account locks. Row triggers only CHECK, with index
-- lookups and no writes:
--   * an entry links to the entry before it (its hash, a posting time not earlier), or to the
--     genesis hash for sequence 0;
--   * a line goes to an open account of its currency, into a free slot of its entry (line
--     number below the entry's line count, with the entry's sequence and date), and continues
--     its account's previous line (next posting number, totals moved by exactly this line,
--     later in chain order).
-- One statement trigger per table then writes the head (the statement's entries must start
-- at the head's next sequence) and each balance (the statement's lines of an account must
-- start right after the balance's posting number), once. The deferred per-entry check at
-- COMMIT (line count and balance per currency) is one query; the per-line copy of it is gone:
-- a line can only take a free slot of its entry, so once an entry has committed with all its
-- slots filled, no line can ever be added to it.

DROP TRIGGER journal_entries_append ON journal_entries;
DROP FUNCTION finance_append_to_chain();
DROP TRIGGER journal_lines_apply ON journal_lines;
DROP FUNCTION finance_apply_line();
DROP TRIGGER journal_lines_balanced ON journal_lines;

-- Entries --------------------------------------------------------------------------------------

CREATE FUNCTION finance_check_chain_link() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $$
DECLARE
    before_hash bytea;
    before_at   timestamptz;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_entries');
    IF NEW.sequence = 0 THEN
        SELECT genesis_hash INTO before_hash FROM ledger_heads WHERE tenant_id = NEW.tenant_id;
    ELSE
        SELECT hash, posted_at INTO before_hash, before_at
          FROM journal_entries WHERE tenant_id = NEW.tenant_id AND sequence = NEW.sequence - 1;
    END IF;
    IF before_hash IS NULL OR before_hash <> NEW.prev_hash THEN
        RAISE EXCEPTION 'entry % does not extend the chain of ledger %', NEW.sequence, NEW.tenant_id
            USING ERRCODE = 'FN001';
    END IF;
    IF before_at > NEW.posted_at THEN
        RAISE EXCEPTION 'entry % is posted before its predecessor', NEW.sequence
            USING ERRCODE = 'FN008';
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
CREATE TRIGGER journal_entries_link BEFORE INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION finance_check_chain_link();

-- Each entry links to the one before it (row trigger above), so the statement's entries of a
-- tenant are a run of the chain; the run must start at the head, which then moves to its end.
CREATE FUNCTION finance_advance_chain_head() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    run record;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_entries');
    FOR run IN
        SELECT tenant_id, min(sequence) AS first_sequence, max(sequence) AS last_sequence,
               count(*) AS entries
          FROM appended GROUP BY tenant_id
    LOOP
        UPDATE ledger_heads h
           SET next_sequence = run.last_sequence + 1, head_hash = e.hash,
               head_posted_at = e.posted_at
          FROM appended e
         WHERE h.tenant_id = run.tenant_id AND h.next_sequence = run.first_sequence
           AND run.last_sequence - run.first_sequence + 1 = run.entries
           AND e.tenant_id = run.tenant_id AND e.sequence = run.last_sequence;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'entries % to % do not extend the chain of ledger %',
                run.first_sequence, run.last_sequence, run.tenant_id
                USING ERRCODE = 'FN001';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_entries_advance_head AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION finance_advance_chain_head();

-- Checked at COMMIT, when all lines of the transaction are in: the entry has as many lines as
-- it claims and balances per currency. (Each line was checked into a free slot of its entry
-- when inserted, with the entry's sequence and date.)
CREATE OR REPLACE FUNCTION finance_check_entry_balanced() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    found_lines  bigint;
    bad_currency text;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_entries');
    SELECT coalesce(sum(lines), 0), min(currency) FILTER (WHERE net <> 0)
      INTO found_lines, bad_currency
      FROM (SELECT currency, count(*) AS lines,
                   sum(CASE WHEN side = 'debit' THEN amount_minor::numeric
                            ELSE -amount_minor::numeric END) AS net
              FROM journal_lines
             WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id
             GROUP BY currency) per_currency;
    IF found_lines <> NEW.line_count THEN
        RAISE EXCEPTION 'entry % has % lines, expected %', NEW.id, found_lines, NEW.line_count
            USING ERRCODE = 'FN003';
    END IF;
    IF bad_currency IS NOT NULL THEN
        RAISE EXCEPTION 'entry % does not balance in %', NEW.id, bad_currency
            USING ERRCODE = 'FN003';
    END IF;
    RETURN NULL;
END
$$;

-- Lines ----------------------------------------------------------------------------------------

CREATE FUNCTION finance_check_line() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $$
DECLARE
    account_currency text;
    account_closed   timestamptz;
    slots            smallint;
    entry_seq        bigint;
    entry_date       date;
    before_debits    bigint := 0;
    before_credits   bigint := 0;
    before_sequence  bigint := -1;
    before_line      smallint := -1;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_lines');
    SELECT currency, closed_at INTO account_currency, account_closed
      FROM accounts WHERE tenant_id = NEW.tenant_id AND id = NEW.account_id;
    IF NOT FOUND OR account_closed IS NOT NULL OR account_currency <> NEW.currency THEN
        RAISE EXCEPTION 'account % cannot take a % line', NEW.account_id, NEW.currency
            USING ERRCODE = 'FN005';
    END IF;
    SELECT line_count, sequence, effective_date INTO slots, entry_seq, entry_date
      FROM journal_entries WHERE tenant_id = NEW.tenant_id AND id = NEW.entry_id;
    IF NOT FOUND OR NEW.line_number >= slots
       OR NEW.entry_sequence <> entry_seq OR NEW.effective_date <> entry_date THEN
        -- Only the writer's own values in the message: the entry may be another tenant's.
        RAISE EXCEPTION 'line % does not fit entry % (no such free line slot, or not the'
            ' entry''s sequence and date)', NEW.line_number, NEW.entry_id
            USING ERRCODE = 'FN003';
    END IF;
    IF NEW.account_posting_sequence > 1 THEN
        SELECT debits_after, credits_after, entry_sequence, line_number
          INTO before_debits, before_credits, before_sequence, before_line
          FROM journal_lines
         WHERE tenant_id = NEW.tenant_id AND account_id = NEW.account_id
           AND account_posting_sequence = NEW.account_posting_sequence - 1;
        -- No previous line: SELECT INTO leaves the totals NULL, refused below.
    END IF;
    IF NEW.account_posting_sequence IS NULL OR NEW.account_posting_sequence < 1
       OR before_debits IS NULL
       OR (before_sequence, before_line) >= (NEW.entry_sequence, NEW.line_number)
       OR NEW.debits_after IS DISTINCT FROM
              (before_debits + CASE WHEN NEW.side = 'debit' THEN NEW.amount_minor ELSE 0 END)
       OR NEW.credits_after IS DISTINCT FROM
              (before_credits + CASE WHEN NEW.side = 'credit' THEN NEW.amount_minor ELSE 0 END)
    THEN
        RAISE EXCEPTION 'line % of entry % does not continue account %''s postings',
            NEW.line_number, NEW.entry_id, NEW.account_id
            USING ERRCODE = 'FN012';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER journal_lines_check BEFORE INSERT ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION finance_check_line();

-- Each line continues its account's previous line (row trigger above), so the statement's
-- lines of an account are a run of its postings; the run must start right after the balance,
-- which then takes the run's last totals. One UPDATE per statement, whatever the line count.
CREATE FUNCTION finance_apply_lines() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    accounts_touched bigint;
    balances_moved   bigint;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'journal_lines');
    WITH runs AS (
        SELECT tenant_id, account_id, min(account_posting_sequence) AS first_posting,
               max(account_posting_sequence) AS last_posting, count(*) AS lines
          FROM appended GROUP BY tenant_id, account_id
    ), moved AS (
        UPDATE balances b
           SET debits_posted = last.debits_after, credits_posted = last.credits_after,
               posting_sequence = last.account_posting_sequence
          FROM runs r
          JOIN appended last
            ON last.tenant_id = r.tenant_id AND last.account_id = r.account_id
           AND last.account_posting_sequence = r.last_posting
         WHERE b.tenant_id = r.tenant_id AND b.account_id = r.account_id
           AND b.posting_sequence = r.first_posting - 1
           AND r.last_posting - r.first_posting + 1 = r.lines
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM moved)
      INTO accounts_touched, balances_moved;
    IF balances_moved <> accounts_touched THEN
        RAISE EXCEPTION 'the lines of % accounts do not continue their balances',
            accounts_touched - balances_moved
            USING ERRCODE = 'FN012';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_lines_apply AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION finance_apply_lines();

REVOKE ALL ON FUNCTION finance_check_chain_link(), finance_advance_chain_head(),
    finance_check_line(), finance_apply_lines() FROM PUBLIC;
