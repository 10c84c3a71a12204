-- 0006: the journal is the event log; the outbox goes.
--
-- Every posting used to write an `entry.posted` row into `outbox` for a relay to a message bus.
-- No relay ever read it, and it repeated what the journal already holds in a better form: the
-- journal is append-only, immutable, written in the same transaction, and numbered without gaps
-- per tenant, so a relay (or any consumer) follows a tenant's entries by sequence
-- (GET /v1/journal with its cursor) and can never miss or reorder one. The outbox row cost about
-- 430 bytes and an index insert per entry (docs/performance.md, "Throughput"). Its rows were
-- copies of journal data, so nothing is lost by dropping them.

DROP TABLE outbox;
