-- 0004: finance_lock_accounts reads the posting's accounts by primary key, whatever the planner
-- believes about the tenant (docs/performance.md, "Stale planner statistics").
--
-- The 0001 version filtered accounts and balances by tenant and joined them. For a tenant
-- created since the last ANALYZE the planner estimates one row per tenant, and it chose a nested
-- loop over all of the tenant's balances times all of its accounts: 10^8 row visits (11 s) for a
-- two-account posting once the tenant had 10,000 accounts. Here each requested account is one
-- lookup by its full primary key (tenant_id, id), planned once for any tenant (a generic plan:
-- the tenant and account are parameters, so the plan rests on the average tenant, never on an
-- estimate for one tenant value). A plan made for the tenant's value took the one-row estimate
-- of a new tenant at its word and, with every index on tenant_id looking equally cheap, could
-- pick (tenant_id, code) and filter all of the tenant's accounts by id. As before, every account is locked first, in id
-- order (so two postings never deadlock), and only then are the balances read, each by a
-- statement that starts after the locks are held and so sees the balance the previous holder
-- committed. Grants stay as they were (OR REPLACE keeps them).

CREATE OR REPLACE FUNCTION finance_lock_accounts(account_ids uuid[])
    RETURNS TABLE (
        tenant_id text, id uuid, code text, name text, type text, currency text,
        debits_must_not_exceed_credits boolean, credits_must_not_exceed_debits boolean,
        metadata jsonb, created_at timestamptz, closed_at timestamptz,
        debits_posted bigint, credits_posted bigint, posting_sequence bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
DECLARE
    tenant text := finance_tenant();
    wanted uuid[] := ARRAY(SELECT DISTINCT r FROM unnest(account_ids) AS u(r) ORDER BY r);
    account uuid;
BEGIN
    FOREACH account IN ARRAY wanted LOOP
        PERFORM 1 FROM accounts a WHERE a.tenant_id = tenant AND a.id = account
            FOR NO KEY UPDATE;
    END LOOP;
    FOREACH account IN ARRAY wanted LOOP
        RETURN QUERY
        SELECT a.tenant_id, a.id, a.code, a.name, a.type, a.currency,
               a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits,
               a.metadata, a.created_at, a.closed_at,
               b.debits_posted, b.credits_posted, b.posting_sequence
          FROM accounts a
          JOIN balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
         WHERE a.tenant_id = tenant AND a.id = account;
    END LOOP;
END
$$;

-- The triggers of the posting path look rows up by (tenant_id, id) the same way, with the
-- posting's values as parameters, and a plan made for a new tenant's values can scan all of its
-- rows the same way (every line's account check read all 3,000 accounts of such a tenant).
ALTER FUNCTION finance_apply_line() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION finance_append_to_chain() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION finance_check_entry_balanced() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION finance_check_balance_limits() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION finance_lock_chain_head() SET plan_cache_mode = force_generic_plan;
