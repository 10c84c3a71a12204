-- 0008: the idempotency key of a posting refers to the entry it posted instead of keeping a copy
-- of the response, and is written once.
--
-- Until now every key kept its first response's status and body, about 700 bytes for a 2-line
-- entry, and was written twice: claimed (INSERT, no response) at the start of the request's
-- transaction, then completed (UPDATE) with the response, which left a dead row version behind
-- each key. About 1,080 bytes on disk per entry posted through the API: half of its total
-- (docs/performance.md, "Throughput").
--
-- A posting's response is rendered from the posted entry alone (EntryOut in api/schemas.py),
-- and a posted entry never changes: the key now keeps the entry's id, and a replay renders that
-- entry again, byte for byte the first response. The service chooses the entry's id before it
-- claims the key, so the claim is inserted complete, once: `entry_id` set, no status, body or
-- completion time. Until the entry is posted the row names an entry that does not exist yet; the
-- foreign key is checked at commit, so a key can never commit without the entry it names.
-- Nothing else changes: the row is still inserted first, so a concurrent request with the same
-- key still waits on the primary key until this transaction ends, then replays (or, after a
-- rollback, does the work); a refused request still rolls back with its key.
--
-- Other writes (opening or closing an account, a checkpoint) keep their status and body, claimed
-- and completed as before: what they describe can change afterwards (an account's name, the
-- signer's state), so their response cannot be rebuilt. There are a few per account, not one per
-- entry.
--
-- Rows already stored are not rewritten: they keep their bodies and replay them byte for byte,
-- as before. (Rendering an entry again would not always give those bytes back: a stored body
-- lists the entry's metadata in the order the client sent it, the journal keeps it as JSONB.)
-- The constraints below are checked against them once, here; none has an entry id.

ALTER TABLE idempotency_keys
    ADD COLUMN entry_id uuid,
    ADD CONSTRAINT idempotency_keys_entry_fkey FOREIGN KEY (tenant_id, entry_id)
        REFERENCES journal_entries (tenant_id, id) DEFERRABLE INITIALLY DEFERRED,
    -- A key holds one response: a stored one, or the entry's.
    ADD CONSTRAINT idempotency_keys_entry_or_body CHECK (
        entry_id IS NULL OR (status_code IS NULL AND response_body IS NULL AND completed_at IS NULL)
    );

-- A completed record never changes and is never deleted: one with a stored response, or one that
-- names an entry (complete from its insert). Only a claim that holds no response yet can be
-- deleted: one still waiting for its response, or one naming an entry that is not posted, which
-- the foreign key above lets exist only inside the transaction that claimed it (a batch giving
-- back the keys of the entries it refused). SECURITY DEFINER so that the entry is looked up
-- whatever row-level security would show the deleting role.
CREATE OR REPLACE FUNCTION finance_guard_idempotency() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'idempotency_keys');
    IF TG_OP = 'DELETE' THEN
        IF OLD.completed_at IS NOT NULL OR (
            OLD.entry_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM journal_entries e
                 WHERE e.tenant_id = OLD.tenant_id AND e.id = OLD.entry_id))
        THEN
            RAISE EXCEPTION 'a completed idempotency record is permanent' USING ERRCODE = 'FN004';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.completed_at IS NOT NULL OR OLD.entry_id IS NOT NULL
       OR NEW.entry_id IS NOT NULL
       OR NEW.key <> OLD.key OR NEW.tenant_id <> OLD.tenant_id
       OR NEW.request_hash <> OLD.request_hash THEN
        RAISE EXCEPTION 'a completed idempotency record is permanent' USING ERRCODE = 'FN004';
    END IF;
    RETURN NEW;
END
$$;

-- A batch claims every key for the entry it would post, then gives back the claims of the
-- entries it refused (0005): those claims name entries that were never posted. Only such claims
-- go, and only the caller's tenant's; the caller checks that it released all it asked for.
-- (Grants stay as 0005 set them: OR REPLACE keeps them.)
CREATE OR REPLACE FUNCTION finance_release_idempotency_keys(keys text[]) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
    WITH released AS (
        DELETE FROM idempotency_keys k
         WHERE k.tenant_id = finance_tenant() AND k.key = ANY(keys)
           AND k.entry_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM journal_entries e
                            WHERE e.tenant_id = k.tenant_id AND e.id = k.entry_id)
        RETURNING 1
    )
    SELECT count(*) FROM released
$$;
