"""Every limit of the service, in one place (TigerBeetle: put a limit on everything).

Units come last in the names. The API, the domain and the database adapter all read from here,
so a limit is changed once and enforced everywhere.
"""

from __future__ import annotations

from typing import Final

LINES_PER_ENTRY_MIN: Final = 2
LINES_PER_ENTRY_MAX: Final = 100

BODY_BYTES_MAX: Final = 256 * 1024
JSON_DEPTH_MAX: Final = 16

PAGE_SIZE_DEFAULT: Final = 50
PAGE_SIZE_MAX: Final = 500
# An opaque cursor wraps at most an account code (128 characters) in base64url JSON.
CURSOR_CHARS_MAX: Final = 200

# A client's X-Request-Id is echoed and logged only if it is this short and plain
# ([A-Za-z0-9._:-]); anything else is replaced by a generated id.
REQUEST_ID_CHARS_MAX: Final = 128

# How long a client should wait before retrying a write refused by the posting freeze
# (FINANCE_WRITE_MODE=readonly), in the Retry-After header.
READ_ONLY_RETRY_AFTER_S: Final = 60

MEMO_CHARS_MAX: Final = 1_000
NAME_CHARS_MAX: Final = 200
ACCOUNT_CODE_CHARS_MAX: Final = 128
ENTRY_TYPE_CHARS_MAX: Final = 32
SOURCE_CHARS_MAX: Final = 128
METADATA_KEYS_MAX: Final = 32
METADATA_KEY_CHARS_MAX: Final = 64
METADATA_VALUE_CHARS_MAX: Final = 512
IDEMPOTENCY_KEY_CHARS_MAX: Final = 255

# Batches (POST /v1/journal/batch, `finance post --batch`): one transaction posts them all, so
# their size bounds how long it holds the tenant's chain head. FINANCE_BATCH_ENTRIES_MAX may
# raise the number of entries from the default (which is also its floor) up to the ceiling; the
# lines of a batch are bounded by that number times the average below, and its body by its own
# size limit (a batch of 1,000 two-line entries is about 300 KiB). The ceiling stays well inside
# STATEMENT_TIMEOUT_MS: every entry of a batch updates the chain head row, and every line its
# account's balance row, within one transaction, so those rows' versions pile up until commit
# and the cost per entry grows with the batch (docs/performance.md, "Batches").
BATCH_ENTRIES_MAX_DEFAULT: Final = 1_000
BATCH_ENTRIES_MAX_CEILING: Final = 2_000
BATCH_LINES_PER_ENTRY_AVG: Final = 10
BATCH_BODY_BYTES_MAX: Final = 8 * 1024 * 1024

# Database timeouts, applied to every pooled connection. A posting holds row locks for a few
# milliseconds; anything waiting far longer is stuck and must fail rather than pile up.
STATEMENT_TIMEOUT_MS: Final = 10_000
LOCK_TIMEOUT_MS: Final = 5_000
IDLE_IN_TRANSACTION_TIMEOUT_MS: Final = 30_000
POOL_SIZE_MIN: Final = 2
POOL_SIZE_MAX: Final = 16
POOL_TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 5

# Serialization failures and deadlocks are retried this many times before giving up.
TRANSACTION_RETRIES_MAX: Final = 5

# Bearer tokens. The token length bounds the work done on unauthenticated input; a leeway of
# more than a few minutes means a broken clock, not a tolerance.
TOKEN_CHARS_MAX: Final = 8_192
TOKEN_SUBJECT_CHARS_MAX: Final = 256
TOKEN_TTL_MAX_S: Final = 31_536_000  # one year
TOKEN_LEEWAY_MAX_S: Final = 300
JWKS_TIMEOUT_S: Final = 5.0
JWKS_LIFESPAN_S: Final = 300.0

# Proof files (docs/proofs.md section 8). A verifier reads a file whole, so its size bounds the
# memory it needs: about 520 bytes per entry on disk and a few kB per entry once parsed.
PROOF_PACKAGE_BYTES_MAX: Final = 1024 * 1024 * 1024
RANGE_ENTRIES_MAX: Final = 1_000_000
RECEIPT_BYTES_MAX: Final = 1024 * 1024
AUDITOR_STATE_BYTES_MAX: Final = 64 * 1024 * 1024
# With --max-age, a checkpoint dated further ahead of the verifier's clock than this is refused:
# the log's clock (or the verifier's) is wrong.
CHECKPOINT_FUTURE_SKEW_MAX_S: Final = 300

# Signed proofs. A checkpoint adds at most this many entries to the Merkle log (a sealer that
# fell far behind catches up over several checkpoints rather than in one long transaction);
# entry hashes are read this many at a time; a sealer round handles at most this many tenants.
CHECKPOINT_LEAVES_MAX: Final = 100_000
SEAL_LEAF_BATCH: Final = 5_000
SEAL_TENANTS_PER_ROUND_MAX: Final = 1_000
# Unsigned checkpoints fetched per signing pass, and entries per read of an exported range.
SIGN_BATCH: Final = 100
ENTRY_RECORDS_BATCH: Final = 1_000
# Retry-After of a receipt asked for before a signed checkpoint covers the entry.
CHECKPOINT_RETRY_AFTER_S: Final = 2
# How long `finance serve` waits for the sealer's round in progress when it stops.
SEALER_STOP_TIMEOUT_S: Final = 15.0

# Rate limits per caller (finance.api.ratelimit): a token bucket per verified (tenant, subject)
# and per address that failed to authenticate, in each process. The defaults are far above what
# one well-behaved client sends (a batch carries up to a thousand entries in one request) and
# what this service posts per second on one core; `finance bench` turns the limit off, since it
# measures the server's ceiling, not the limit.
RATE_LIMIT_PER_SECOND_DEFAULT: Final = 200.0
RATE_LIMIT_BURST_DEFAULT: Final = 400
RATE_LIMIT_PER_SECOND_MAX: Final = 1_000_000.0
RATE_LIMIT_BURST_MAX: Final = 1_000_000
# Buckets kept per family at most: about 200 bytes each, so tens of MB at worst.
RATE_LIMIT_BUCKETS_MAX: Final = 100_000
