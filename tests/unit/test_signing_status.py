"""The process-wide signing status that /readyz reports: degraded since the first failure of an
outage, with the latest reason, until a signature succeeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finance.services.proofs import SigningState, SigningStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ready_until_a_failure() -> None:
    status = SigningStatus()
    assert status.state() == SigningState(None, None)
    assert not status.state().degraded


def test_an_outage_keeps_its_start_and_its_latest_reason() -> None:
    status = SigningStatus()
    status.failed("HSM unreachable", T0)
    status.failed("HSM timed out", T0 + timedelta(seconds=5))
    assert status.state() == SigningState("HSM timed out", T0)
    assert status.state().degraded
    status.recovered()
    assert not status.state().degraded
    status.failed("KMS throttled", T0 + timedelta(minutes=1))
    assert status.state().since == T0 + timedelta(minutes=1)
