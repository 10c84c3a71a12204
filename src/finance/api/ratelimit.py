"""Rate limits per caller: token buckets in this process's memory.

Who is a caller:

* An authenticated request is charged to its verified token's `(tenant, subject)`, not to the
  token's id (`jti`): a client that fetches a fresh token does not get a fresh bucket, and a
  forged token, which fails verification, cannot drain somebody else's.
* A request whose token is missing or refused is charged to its client address (the TCP peer;
  or uvicorn's X-Forwarded-For client when the peer is a trusted proxy), so a storm of 401s
  is answered with 429s. Requests that authenticate never touch the address buckets, so good
  clients behind a shared address are not held back by a broken one.
* `/healthz`, `/readyz` and `/metrics` need no token and are never limited.

Each bucket holds at most `burst` requests and refills at `rate_per_s`. The limit is per
process: with several worker processes (or replicas), each has its own buckets, so a caller may
get up to that many times the rate.

Memory is bounded: a bucket idle long enough to have refilled is the same as no bucket, so it is
dropped; and beyond `buckets_max` the least recently used bucket goes first even if not yet
full (the one leniency, favouring the many over a stale few).

The classes here are pure: the clock is injected (`time.monotonic` in the service), so the
unit tests drive time by hand.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from finance import limits


class RateLimited(Exception):
    """A caller has used up its bucket; `retry_after_s` whole seconds until one request more."""

    def __init__(self, kind: str, retry_after_s: int) -> None:
        super().__init__(f"rate limited ({kind}); retry after {retry_after_s} s")
        self.kind = kind
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


def retry_after_s(missing_tokens: float, rate_per_s: float) -> int:
    """Whole seconds until `missing_tokens` have refilled, rounded up and never below 1: a
    client that waits that long is served (HTTP's Retry-After has no fractions)."""
    return max(1, math.ceil(missing_tokens / rate_per_s))


class TokenBuckets:
    """One token bucket per key, thread-safe (sync FastAPI dependencies run in a thread pool)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float],
        buckets_max: int = limits.RATE_LIMIT_BUCKETS_MAX,
    ) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError("rate_per_s must be a positive finite number")
        if burst < 1 or buckets_max < 1:
            raise ValueError("burst and buckets_max must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.buckets_max = buckets_max
        self._clock = clock
        # Least recently charged first, so idle buckets are found at the front.
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable) -> int | None:
        """Spend one request of `key`'s bucket: None when allowed, else the Retry-After in whole
        seconds. A refused request spends nothing, so waiting that long is enough unless the
        same key spends the refill meanwhile."""
        with self._lock:
            now = self._clock()
            self._evict_idle(now)
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
            else:
                elapsed_s = max(0.0, now - bucket.updated_s)
                bucket.tokens = min(self.burst, bucket.tokens + elapsed_s * self.rate_per_s)
                bucket.updated_s = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.buckets_max:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return retry_after_s(1.0 - bucket.tokens, self.rate_per_s)

    def _evict_idle(self, now: float) -> None:
        """Drop buckets from the least recently used end while they have refilled to `burst`:
        forgetting them changes nothing. Stops at the first that has not, so each call costs
        O(1) amortized."""
        refill_s = self.burst / self.rate_per_s
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated_s < refill_s:
                return
            del self._buckets[key]


class RateLimiter:
    """The service's two families of buckets: verified callers and unauthenticated addresses.
    `None` limits (rate 0: FINANCE_RATE_LIMIT_PER_SECOND=0) let everything through."""

    def __init__(self, callers: TokenBuckets | None, addresses: TokenBuckets | None) -> None:
        self.callers = callers
        self.addresses = addresses

    @classmethod
    def create(cls, rate_per_s: float, burst: int, *, clock: Callable[[], float]) -> RateLimiter:
        if rate_per_s == 0:
            return cls(None, None)
        return cls(
            TokenBuckets(rate_per_s, burst, clock=clock),
            TokenBuckets(rate_per_s, burst, clock=clock),
        )

    def charge_caller(self, tenant_id: str, subject: str) -> None:
        """Raise RateLimited when the verified caller is over its limit."""
        self._charge(self.callers, "token", (tenant_id, subject))

    def charge_address(self, address: str) -> None:
        """Raise RateLimited when an address that failed to authenticate is over its limit."""
        self._charge(self.addresses, "address", address)

    @staticmethod
    def _charge(buckets: TokenBuckets | None, kind: str, key: Hashable) -> None:
        if buckets is None:
            return
        wait_s = buckets.take(key)
        if wait_s is not None:
            raise RateLimited(kind, wait_s)
