"""Token buckets on a clock the test turns by hand: burst, refill, Retry-After, eviction."""

from __future__ import annotations

import os

import pytest

from finance import limits
from finance.api.ratelimit import RateLimited, RateLimiter, TokenBuckets, retry_after_s
from finance.config import load_settings
from tests.unit.test_config import refused


class ManualClock:
    """A monotonic clock in seconds that moves only when told to."""

    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def spend(buckets: TokenBuckets, key: str, count: int) -> list[int | None]:
    return [buckets.take(key) for _ in range(count)]


def test_a_full_bucket_allows_its_burst_then_refuses() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=3, clock=clock)
    assert spend(buckets, "a", 3) == [None, None, None]
    assert buckets.take("a") == 1
    # Another key has a bucket of its own.
    assert buckets.take("b") is None


def test_the_bucket_refills_at_the_rate_and_no_further_than_the_burst() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=4.0, burst=2, clock=clock)
    assert spend(buckets, "a", 3) == [None, None, 1]
    clock.advance(0.25)  # one request's worth
    assert spend(buckets, "a", 2) == [None, 1]
    clock.advance(0.125)  # half a request: not yet
    assert buckets.take("a") == 1
    clock.advance(0.125)
    assert buckets.take("a") is None
    clock.advance(3600.0)  # an hour idle refills the burst, not 14,400 requests
    assert spend(buckets, "a", 3) == [None, None, 1]


def test_a_refused_request_spends_nothing() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=0.5, burst=1, clock=clock)
    assert buckets.take("a") is None
    assert spend(buckets, "a", 5) == [2, 2, 2, 2, 2]
    clock.advance(2.0)  # the Retry-After the refusals gave
    assert buckets.take("a") is None


@pytest.mark.parametrize(
    ("missing_tokens", "rate_per_s", "expected_s"),
    [
        (1.0, 1.0, 1),
        (1.0, 0.5, 2),
        (1.0, 1 / 3, 3),
        (1.0, 100.0, 1),  # 10 ms rounds up to the smallest whole second
        (0.5, 0.25, 2),
        (0.01, 0.001, 10),
        (1.0, 0.3, 4),  # 3.33 s rounds up: waiting 3 s would be refused again
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    missing_tokens: float, rate_per_s: float, expected_s: int
) -> None:
    assert retry_after_s(missing_tokens, rate_per_s) == expected_s


def test_retry_after_counts_what_has_refilled_already() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=0.1, burst=1, clock=clock)
    assert buckets.take("a") is None
    assert buckets.take("a") == 10
    clock.advance(6.5)
    assert buckets.take("a") == 4  # 3.5 s to go, rounded up


def test_a_clock_that_goes_back_refills_nothing() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, clock=clock)
    assert buckets.take("a") is None
    clock.advance(-10.0)
    assert buckets.take("a") == 1


def test_idle_buckets_are_evicted_once_they_would_be_full() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=4, clock=clock)  # refills in 2 s
    spend(buckets, "old", 4)
    clock.advance(1.0)
    buckets.take("recent")
    assert len(buckets) == 2
    clock.advance(1.0)  # "old" has refilled: forgetting it changes nothing
    buckets.take("new")
    assert len(buckets) == 2
    assert spend(buckets, "old", 5) == [None, None, None, None, 1]
    clock.advance(60.0)
    buckets.take("latest")
    assert len(buckets) == 1


def test_the_number_of_buckets_is_bounded_least_recently_used_first() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, clock=clock, buckets_max=3)
    for key in ("a", "b", "c"):
        assert buckets.take(key) is None
    assert buckets.take("a") == 1  # "a" is now the most recently used
    assert buckets.take("d") is None
    assert len(buckets) == 3
    assert buckets.take("a") == 1  # still remembered, still empty
    assert buckets.take("b") is None  # forgotten: the one leniency of a full table


@pytest.mark.parametrize(
    ("rate_per_s", "burst", "buckets_max"),
    [
        (0.0, 1, 1),
        (-1.0, 1, 1),
        (float("inf"), 1, 1),
        (float("nan"), 1, 1),
        (1.0, 0, 1),
        (1.0, 1, 0),
    ],
)
def test_buckets_refuse_limits_that_make_no_sense(
    rate_per_s: float, burst: int, buckets_max: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBuckets(rate_per_s, burst, clock=ManualClock(), buckets_max=buckets_max)


def test_the_limiter_charges_callers_and_addresses_separately() -> None:
    clock = ManualClock()
    limiter = RateLimiter.create(1.0, 1, clock=clock)
    limiter.charge_caller("t1", "svc")
    limiter.charge_caller("t2", "svc")  # same subject, another tenant: another caller
    limiter.charge_address("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limiter.charge_caller("t1", "svc")
    assert (refused.value.kind, refused.value.retry_after_s) == ("token", 1)
    with pytest.raises(RateLimited) as refused:
        limiter.charge_address("10.0.0.1")
    assert (refused.value.kind, refused.value.retry_after_s) == ("address", 1)


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter.create(0.0, 1, clock=ManualClock())
    assert (limiter.callers, limiter.addresses) == (None, None)
    for _ in range(1_000):
        limiter.charge_caller("t1", "svc")
        limiter.charge_address("10.0.0.1")


def test_the_settings_default_to_a_generous_limit_and_refuse_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FINANCE_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (
        limits.RATE_LIMIT_PER_SECOND_DEFAULT,
        limits.RATE_LIMIT_BURST_DEFAULT,
    )
    problems = refused(
        monkeypatch, FINANCE_RATE_LIMIT_PER_SECOND="-1", FINANCE_RATE_LIMIT_BURST="0"
    )
    assert [problem.split(":")[0] for problem in problems] == [
        "FINANCE_RATE_LIMIT_PER_SECOND",
        "FINANCE_RATE_LIMIT_BURST",
    ]
    monkeypatch.setenv("FINANCE_RATE_LIMIT_PER_SECOND", "0")
    monkeypatch.setenv("FINANCE_RATE_LIMIT_BURST", "1")
    assert load_settings().rate_limit_per_second == 0  # off
