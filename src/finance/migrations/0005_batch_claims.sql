-- 0005: batches of entries (POST /v1/journal/batch) release the idempotency keys of the entries
-- they refuse.
--
-- A batch claims the keys of all its entries first, as a single posting claims its one key, so
-- that a concurrent request with any of those keys waits for the batch. Entries are then booked;
-- those refused must leave nothing behind, exactly like a refused single posting, whose claim
-- goes with its rolled-back transaction: a corrected entry can be sent again with the same key.
-- A batch commits its other entries, so it gives those claims back explicitly, before commit.
--
-- Only a claim that was never completed can go: a completed record stays permanent (the guard
-- below), and the service still has no DELETE privilege on the table; it calls
-- finance_release_idempotency_keys, which deletes only its tenant's uncompleted claims. An
-- uncompleted claim is never visible to another transaction (the claim is completed before
-- commit or rolled back), so this deletes only the caller's own claims.

CREATE OR REPLACE FUNCTION finance_guard_idempotency() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.completed_at IS NOT NULL THEN
            RAISE EXCEPTION 'a completed idempotency record is permanent' USING ERRCODE = 'FN004';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.completed_at IS NOT NULL
       OR NEW.key <> OLD.key OR NEW.tenant_id <> OLD.tenant_id
       OR NEW.request_hash <> OLD.request_hash THEN
        RAISE EXCEPTION 'a completed idempotency record is permanent' USING ERRCODE = 'FN004';
    END IF;
    RETURN NEW;
END
$$;

-- How many of `keys` were released; the caller checks that it released all it asked for.
CREATE FUNCTION finance_release_idempotency_keys(keys text[]) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
    WITH released AS (
        DELETE FROM idempotency_keys
         WHERE tenant_id = finance_tenant() AND key = ANY(keys) AND completed_at IS NULL
        RETURNING 1
    )
    SELECT count(*) FROM released
$$;
REVOKE ALL ON FUNCTION finance_release_idempotency_keys(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION finance_release_idempotency_keys(text[]) TO finance_app;
