-- 0003: the audit export log (docs/proofs.md section 9, docs/operations.md "Audit export").
-- Every audit bundle written to a store is recorded here: which range of which ledger, proven
-- against which signed checkpoint (and from which earlier one), the bundle's SHA-256 and size,
-- and where it went. The bundle itself lives in the write-once store; this row is how an operator
-- finds it again and how an auditor's copy is matched to what was exported.
--
-- Custom SQLSTATE added here (class FN, see 0001):
--   FN011 an export row that names a range outside its checkpoint's tree, an unsigned
--         checkpoint, or a starting checkpoint newer than the one the range is proven against

CREATE TABLE ledger_proofs (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    start_id       bigint NOT NULL CHECK (start_id >= 0),
    end_id         bigint NOT NULL,
    checkpoint_seq bigint NOT NULL,
    since_seq      bigint,
    bundle_name    text NOT NULL CHECK (bundle_name ~ '^[a-z0-9][a-z0-9._-]{0,199}$'),
    bundle_sha256  bytea NOT NULL CHECK (length(bundle_sha256) = 32),
    bundle_size    bigint NOT NULL CHECK (bundle_size > 0),
    location       text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),
    exported_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- One row per bundle and place: re-running an identical export records nothing new.
    UNIQUE (tenant_id, bundle_sha256, location),
    CHECK (start_id <= end_id),
    CHECK (since_seq IS NULL OR since_seq < checkpoint_seq),
    FOREIGN KEY (tenant_id, checkpoint_seq) REFERENCES checkpoints (tenant_id, seq),
    FOREIGN KEY (tenant_id, since_seq) REFERENCES checkpoints (tenant_id, seq)
);
CREATE INDEX ledger_proofs_by_range ON ledger_proofs (tenant_id, start_id, end_id);

-- The database checks again what the exporter proved: the range lies inside the checkpoint's
-- tree and both checkpoints were signed when the bundle was recorded.
CREATE FUNCTION finance_check_ledger_proof() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    anchor checkpoints%ROWTYPE;
BEGIN
    SELECT * INTO anchor FROM checkpoints
     WHERE tenant_id = NEW.tenant_id AND seq = NEW.checkpoint_seq;
    IF anchor.signatures IS NULL THEN
        RAISE EXCEPTION 'export of % is proven against checkpoint %, which is not signed',
            NEW.tenant_id, NEW.checkpoint_seq USING ERRCODE = 'FN011';
    END IF;
    IF NEW.end_id >= anchor.tree_size THEN
        RAISE EXCEPTION 'export of entries %..% lies outside checkpoint % (tree size %)',
            NEW.start_id, NEW.end_id, NEW.checkpoint_seq, anchor.tree_size
            USING ERRCODE = 'FN011';
    END IF;
    IF NEW.since_seq IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM checkpoints
         WHERE tenant_id = NEW.tenant_id AND seq = NEW.since_seq AND signatures IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'export of % starts from checkpoint %, which is not signed',
            NEW.tenant_id, NEW.since_seq USING ERRCODE = 'FN011';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ledger_proofs_check BEFORE INSERT ON ledger_proofs
    FOR EACH ROW EXECUTE FUNCTION finance_check_ledger_proof();
CREATE TRIGGER ledger_proofs_immutable BEFORE UPDATE OR DELETE ON ledger_proofs
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER ledger_proofs_no_truncate BEFORE TRUNCATE ON ledger_proofs
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();

ALTER TABLE ledger_proofs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ledger_proofs USING (tenant_id = finance_tenant());

REVOKE ALL ON ledger_proofs FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_proofs TO finance_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
