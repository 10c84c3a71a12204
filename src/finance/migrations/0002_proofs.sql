-- 0002: signed proofs. A Merkle log per tenant ledger over the entry hashes (leaf i is
-- SHA-256(0x00 || journal_entries.hash of sequence i)), kept as stored subtree roots, and the
-- checkpoints that sign its root (docs/proofs.md).
--
-- The posting path does not touch these tables: a sealer reads journal_entries.hash afterwards,
-- stores the Merkle subtrees that the new entries complete and an unsigned checkpoint in one
-- transaction, then signs outside any transaction. As in 0001, the database checks again what
-- the service computed wherever that is cheap: a checkpoint must extend its tenant's checkpoint
-- chain exactly, its columns must be what its signed body says, its chain head must be the
-- hash of its last entry; bodies never change; signatures are written once, in seq order.
--
-- Custom SQLSTATEs added here (class FN, see 0001):
--   FN009 a checkpoint does not extend its tenant's checkpoint chain, disagrees with its body,
--         or names a chain head that is not the hash of its last entry; a proof head moved
--         other than forward by one checkpoint; a Merkle node outside the ledger
--   FN010 a checkpoint signed before its predecessor, or signatures that are not a JSON array

-- One row per tenant ledger: where its Merkle log has been sealed to. `frontier` is the compact
-- range [0, tree_size) (docs/proofs.md section 4: popcount(tree_size) hashes of 32 bytes, largest subtree
-- first), so the next checkpoint's root needs only the new leaves. Only the checkpoint trigger
-- below moves the head; the service writes the frontier that goes with it.
CREATE TABLE proof_heads (
    tenant_id      text PRIMARY KEY REFERENCES tenants (id),
    tree_size      bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
    next_seq       bigint NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    root_hash      bytea CHECK (length(root_hash) = 32),
    last_body_hash bytea CHECK (length(last_body_hash) = 32),
    last_issued_at timestamptz,
    frontier       bytea NOT NULL DEFAULT '\x'::bytea CHECK (length(frontier) % 32 = 0),
    CHECK ((next_seq = 0) = (tree_size = 0)),
    CHECK ((next_seq = 0) = (last_body_hash IS NULL)),
    CHECK ((next_seq = 0) = (last_issued_at IS NULL)),
    CHECK ((next_seq = 0) = (root_hash IS NULL))
);

-- Roots of the perfect subtrees [node_index * 2^height, (node_index + 1) * 2^height) whose height
-- is a positive multiple of 8: one per 256 leaves, one per 65,536 leaves... Any other subtree is
-- recomputed from fewer than 256 of these, or from fewer than 256 entry hashes
-- (finance/proofs/tiles.py), so no proof ever reads all the leaves of a big ledger.
CREATE TABLE merkle_nodes (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    height     smallint NOT NULL CHECK (height > 0 AND height % 8 = 0 AND height <= 56),
    node_index bigint NOT NULL CHECK (node_index >= 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, height, node_index)
);

-- Checkpoints as issued: the JCS bytes of the signed body, its hash (the next checkpoint's
-- prev_checkpoint) and, as columns for queries, what the body says. `signatures` (the JCS bytes
-- of the envelope's signature list) is NULL while the checkpoint waits for the signer, and is
-- then written once.
CREATE TABLE checkpoints (
    tenant_id       text NOT NULL REFERENCES tenants (id),
    seq             bigint NOT NULL CHECK (seq >= 0),
    tree_size       bigint NOT NULL CHECK (tree_size > 0),
    root_hash       bytea NOT NULL CHECK (length(root_hash) = 32),
    chain_head      bytea NOT NULL CHECK (length(chain_head) = 32),
    prev_checkpoint bytea CHECK (length(prev_checkpoint) = 32),
    issued_at       timestamptz NOT NULL,
    body            bytea NOT NULL CHECK (length(body) BETWEEN 2 AND 4096),
    body_hash       bytea NOT NULL,
    signatures      bytea,
    signed_at       timestamptz,
    PRIMARY KEY (tenant_id, seq),
    -- Checkpoints are issued only when the tree grew: one per size.
    UNIQUE (tenant_id, tree_size),
    CHECK ((seq = 0) = (prev_checkpoint IS NULL)),
    CHECK ((signatures IS NULL) = (signed_at IS NULL)),
    -- body_hash = SHA-256("finance/checkpoint/v1\n" || body); the literal is that prefix.
    CHECK (body_hash = sha256('\x66696e616e63652f636865636b706f696e742f76310a'::bytea || body))
);
CREATE INDEX checkpoints_unsigned ON checkpoints (tenant_id, seq) WHERE signatures IS NULL;

-- The RFC 9162 consistency proof from each checkpoint to the next (docs/proofs.md section 5): the
-- concatenated 32-byte hashes, at most 64 of them.
CREATE TABLE checkpoint_consistency (
    tenant_id text NOT NULL,
    from_seq  bigint NOT NULL,
    to_seq    bigint NOT NULL,
    proof     bytea NOT NULL CHECK (length(proof) % 32 = 0 AND length(proof) BETWEEN 32 AND 2048),
    PRIMARY KEY (tenant_id, to_seq),
    CHECK (to_seq = from_seq + 1),
    FOREIGN KEY (tenant_id, from_seq) REFERENCES checkpoints (tenant_id, seq),
    FOREIGN KEY (tenant_id, to_seq) REFERENCES checkpoints (tenant_id, seq)
);

-- Every tenant has a proof head from its creation on (and the existing ones get theirs now).
INSERT INTO proof_heads (tenant_id) SELECT tenant_id FROM ledger_heads;

CREATE FUNCTION finance_open_proof_head() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'ledger_heads');
    INSERT INTO proof_heads (tenant_id) VALUES (NEW.tenant_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_heads_open_proof_head AFTER INSERT ON ledger_heads
    FOR EACH ROW EXECUTE FUNCTION finance_open_proof_head();

-- A checkpoint takes exactly the next place in its tenant's checkpoint chain, covers more
-- entries than the previous one and is issued after it; its columns are what its body says,
-- and its chain head is the hash of the last entry it covers. It then advances the head.
CREATE FUNCTION finance_append_checkpoint() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    body jsonb;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'checkpoints');
    IF NEW.signatures IS NOT NULL THEN
        RAISE EXCEPTION 'checkpoint % is stored unsigned and signed afterwards', NEW.seq
            USING ERRCODE = 'FN009';
    END IF;
    body := convert_from(NEW.body, 'UTF8')::jsonb;
    IF body->>'type' IS DISTINCT FROM 'finance/checkpoint/v1'
       OR (body->>'seq')::bigint IS DISTINCT FROM NEW.seq
       OR (body->>'tree_size')::bigint IS DISTINCT FROM NEW.tree_size
       OR body->>'root_hash' IS DISTINCT FROM encode(NEW.root_hash, 'base64')
       OR body->>'chain_head' IS DISTINCT FROM encode(NEW.chain_head, 'base64')
       OR body->>'prev_checkpoint' IS DISTINCT FROM encode(NEW.prev_checkpoint, 'base64')
       OR (body->>'issued_at')::timestamptz IS DISTINCT FROM NEW.issued_at
       OR right(body->>'origin', length(NEW.tenant_id) + 1) IS DISTINCT FROM '/' || NEW.tenant_id
    THEN
        RAISE EXCEPTION 'checkpoint % columns disagree with its body', NEW.seq
            USING ERRCODE = 'FN009';
    END IF;
    UPDATE proof_heads
       SET next_seq = next_seq + 1, tree_size = NEW.tree_size, root_hash = NEW.root_hash,
           last_body_hash = NEW.body_hash, last_issued_at = NEW.issued_at
     WHERE tenant_id = NEW.tenant_id
       AND next_seq = NEW.seq
       AND last_body_hash IS NOT DISTINCT FROM NEW.prev_checkpoint
       AND tree_size < NEW.tree_size
       AND (last_issued_at IS NULL OR last_issued_at < NEW.issued_at);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkpoint % does not extend the checkpoint chain of ledger %',
            NEW.seq, NEW.tenant_id USING ERRCODE = 'FN009';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM journal_entries
                    WHERE tenant_id = NEW.tenant_id AND sequence = NEW.tree_size - 1
                      AND hash = NEW.chain_head) THEN
        RAISE EXCEPTION 'checkpoint % chain_head is not the hash of entry %',
            NEW.seq, NEW.tree_size - 1 USING ERRCODE = 'FN009';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER checkpoints_append BEFORE INSERT ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION finance_append_checkpoint();

-- A body never changes; signatures go from NULL to a JSON array once, and only after the
-- previous checkpoint's: a verifier walking the chain never meets a gap before the newest.
CREATE FUNCTION finance_guard_checkpoint_update() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'checkpoints');
    IF (NEW.tenant_id, NEW.seq, NEW.tree_size, NEW.root_hash, NEW.chain_head,
        NEW.prev_checkpoint, NEW.issued_at, NEW.body, NEW.body_hash)
       IS DISTINCT FROM
       (OLD.tenant_id, OLD.seq, OLD.tree_size, OLD.root_hash, OLD.chain_head,
        OLD.prev_checkpoint, OLD.issued_at, OLD.body, OLD.body_hash) THEN
        RAISE EXCEPTION 'checkpoint bodies are immutable' USING ERRCODE = 'FN004';
    END IF;
    IF OLD.signatures IS NOT NULL OR NEW.signatures IS NULL THEN
        RAISE EXCEPTION 'checkpoint % signatures are written once and never change', OLD.seq
            USING ERRCODE = 'FN004';
    END IF;
    IF jsonb_typeof(convert_from(NEW.signatures, 'UTF8')::jsonb) IS DISTINCT FROM 'array'
       OR jsonb_array_length(convert_from(NEW.signatures, 'UTF8')::jsonb) = 0 THEN
        RAISE EXCEPTION 'checkpoint % signatures must be a non-empty JSON array', OLD.seq
            USING ERRCODE = 'FN010';
    END IF;
    IF EXISTS (SELECT 1 FROM checkpoints
                WHERE tenant_id = NEW.tenant_id AND seq = NEW.seq - 1 AND signatures IS NULL) THEN
        RAISE EXCEPTION 'checkpoint % signed before checkpoint %', NEW.seq, NEW.seq - 1
            USING ERRCODE = 'FN010';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER checkpoints_guard_update BEFORE UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION finance_guard_checkpoint_update();

-- The head moves only forward, one checkpoint at a time (the trigger above moves it).
CREATE FUNCTION finance_guard_proof_head() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.tenant_id <> OLD.tenant_id
       OR NEW.next_seq NOT IN (OLD.next_seq, OLD.next_seq + 1)
       OR (NEW.next_seq = OLD.next_seq
           AND (NEW.tree_size, NEW.root_hash, NEW.last_body_hash, NEW.last_issued_at)
               IS DISTINCT FROM
               (OLD.tree_size, OLD.root_hash, OLD.last_body_hash, OLD.last_issued_at))
       OR (NEW.next_seq = OLD.next_seq + 1 AND NEW.tree_size <= OLD.tree_size) THEN
        RAISE EXCEPTION 'the proof head of % moves forward one checkpoint at a time',
            OLD.tenant_id USING ERRCODE = 'FN009';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER proof_heads_guard BEFORE UPDATE ON proof_heads
    FOR EACH ROW EXECUTE FUNCTION finance_guard_proof_head();

-- Checked at commit, after the checkpoint moved the head and the service wrote the frontier
-- that goes with it: a frontier of size n has exactly popcount(n) hashes.
CREATE FUNCTION finance_check_frontier_shape() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    head proof_heads%ROWTYPE;
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'proof_heads');
    SELECT * INTO head FROM proof_heads WHERE tenant_id = NEW.tenant_id;
    IF length(head.frontier) <> 32 * bit_count(head.tree_size::bit(64)) THEN
        RAISE EXCEPTION 'the frontier of % does not fit its tree size %',
            head.tenant_id, head.tree_size USING ERRCODE = 'FN009';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER proof_heads_frontier_shape AFTER UPDATE ON proof_heads
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION finance_check_frontier_shape();

-- A stored subtree lies within the ledger's entries.
CREATE FUNCTION finance_check_merkle_node() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    PERFORM finance_require_table(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'merkle_nodes');
    IF NOT EXISTS (SELECT 1 FROM ledger_heads
                    WHERE tenant_id = NEW.tenant_id
                      AND (NEW.node_index + 1) * (1::bigint << NEW.height) <= next_sequence) THEN
        RAISE EXCEPTION 'Merkle node (%, %) lies outside the ledger of %',
            NEW.height, NEW.node_index, NEW.tenant_id USING ERRCODE = 'FN009';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER merkle_nodes_within_ledger BEFORE INSERT ON merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION finance_check_merkle_node();

CREATE TRIGGER merkle_nodes_immutable BEFORE UPDATE OR DELETE ON merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER checkpoints_undeletable BEFORE DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER checkpoint_consistency_immutable BEFORE UPDATE OR DELETE ON checkpoint_consistency
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER proof_heads_undeletable BEFORE DELETE ON proof_heads
    FOR EACH ROW EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER checkpoint_consistency_no_truncate BEFORE TRUNCATE ON checkpoint_consistency
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();
CREATE TRIGGER proof_heads_no_truncate BEFORE TRUNCATE ON proof_heads
    FOR EACH STATEMENT EXECUTE FUNCTION finance_forbid_change();

-- Work for sealers, across tenants (row-level security would hide every tenant but one):
-- tenants whose ledger grew past their last checkpoint or that have unsigned checkpoints,
-- those sealed longest ago first. Only tenant ids and counts leave this function.
CREATE FUNCTION finance_proof_backlog(tenants_max integer)
    RETURNS TABLE (tenant_id text, unsealed_entries bigint, unsigned_checkpoints bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    SELECT l.tenant_id, l.next_sequence - p.tree_size, coalesce(u.unsigned, 0)
      FROM ledger_heads l
      JOIN proof_heads p ON p.tenant_id = l.tenant_id
      LEFT JOIN (SELECT c.tenant_id, count(*) AS unsigned FROM checkpoints c
                  WHERE c.signatures IS NULL GROUP BY c.tenant_id) u
             ON u.tenant_id = l.tenant_id
     WHERE l.next_sequence > p.tree_size OR u.unsigned > 0
     ORDER BY p.last_issued_at NULLS FIRST, l.tenant_id
     LIMIT tenants_max
$$;

-- Readiness and metrics: how many checkpoints wait for the signer, and since when.
CREATE FUNCTION finance_unsigned_checkpoints(OUT unsigned bigint, OUT oldest_issued_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    SELECT count(*), min(issued_at) FROM checkpoints WHERE signatures IS NULL
$$;

-- Row-level security ------------------------------------------------------------------------

ALTER TABLE proof_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON proof_heads USING (tenant_id = finance_tenant());
ALTER TABLE merkle_nodes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON merkle_nodes USING (tenant_id = finance_tenant());
ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON checkpoints USING (tenant_id = finance_tenant());
ALTER TABLE checkpoint_consistency ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON checkpoint_consistency USING (tenant_id = finance_tenant());

-- Privileges: read, append, write the frontier and the signatures; nothing else -------------

REVOKE ALL ON proof_heads, merkle_nodes, checkpoints, checkpoint_consistency FROM PUBLIC;
GRANT SELECT ON proof_heads TO finance_app;
-- Also what lets a sealer lock its head (SELECT ... FOR UPDATE needs an UPDATE right).
GRANT UPDATE (frontier) ON proof_heads TO finance_app;
GRANT SELECT, INSERT ON merkle_nodes, checkpoints, checkpoint_consistency TO finance_app;
GRANT UPDATE (signatures, signed_at) ON checkpoints TO finance_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON FUNCTION finance_proof_backlog(integer), finance_unsigned_checkpoints()
    TO finance_app;
