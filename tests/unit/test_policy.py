"""Retry and backoff decisions."""

from __future__ import annotations

from typing import Any

import pytest

from workflow import policy
from workflow.errors import ConfigurationError


def _attempts(*outcomes: str) -> list[dict[str, object]]:
    return [{"kind": "attempt", "attempt": n, "outcome": o} for n, o in enumerate(outcomes, 1)]


def test_counted_attempts_skip_released_retry_and_actions() -> None:
    history = [*_attempts("failure", "released", "retry", "lost"),
               {"kind": "action", "action": "change"}]  # fmt: skip
    assert policy.counted_attempts(history) == 2


@pytest.mark.parametrize(
    ("outcomes", "retries", "allowed"),
    [
        ((), 0, True),
        (("failure",), 0, False),
        (("failure",), 1, True),
        (("failure", "lost"), 1, False),
        (("failure", "released", "retry"), 1, True),
        (("failure",) * 5, 5, True),
        (("failure",) * 6, 5, False),
    ],
)
def test_at_most_one_plus_retries_counted_attempts(outcomes: tuple[str, ...], retries: int,
                                                   allowed: bool) -> None:  # fmt: skip
    assert policy.may_retry(_attempts(*outcomes), retries) is allowed


@pytest.mark.parametrize(
    ("counted", "base", "expected"),
    [(1, None, 5.0), (2, None, 10.0), (3, 1.5, 6.0), (1, 0, 0.0), (0, 5, 0.0), (20, 10, 3600.0)],
)
def test_backoff_doubles_up_to_the_cap(counted: int, base: float | None, expected: float) -> None:
    assert policy.backoff_delay(counted, base) == expected


def test_backoff_delays_grow_by_factor_up_to_the_cap() -> None:
    backoff = policy.Backoff(first=0.5, factor=3.0, cap=10.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.5, 4.5, 10.0, 10.0, 10.0]


def test_backoff_reset_starts_again_from_first() -> None:
    backoff = policy.Backoff(first=1.0, cap=60.0)
    assert [backoff.next() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert [backoff.next() for _ in range(2)] == [1.0, 2.0]


def test_backoff_first_above_the_cap_is_capped() -> None:
    assert policy.Backoff(first=5.0, cap=2.0).next() == 2.0


def test_backoff_keeps_failing_for_ever_without_overflow() -> None:
    backoff = policy.Backoff(first=0.5, cap=30.0)
    for _ in range(5000):
        delay = backoff.next()
    assert delay == 30.0


@pytest.mark.parametrize("jitter", [0.0, 0.25, 1.0])
def test_backoff_jitter_takes_at_most_its_fraction_off(jitter: float) -> None:
    # The random source at its two ends: nothing taken off, and (nearly) all of jitter.
    whole = policy.Backoff(first=0.1, cap=2.0, jitter=jitter, rand=lambda: 0.0)
    most = policy.Backoff(first=0.1, cap=2.0, jitter=jitter, rand=lambda: 0.999999)
    for _ in range(8):
        top, low = whole.next(), most.next()
        assert low == pytest.approx(top * (1 - jitter), abs=1e-5)
        assert 0 <= low <= top <= 2.0


def test_backoff_jitter_from_the_random_source_stays_within_bounds() -> None:
    backoff = policy.Backoff(first=0.1, factor=2.0, cap=2.0, jitter=0.5)
    schedule = policy.Backoff(first=0.1, factor=2.0, cap=2.0)
    delays = [(backoff.next(), schedule.next()) for _ in range(200)]
    assert all(top / 2 <= delay <= top for delay, top in delays)
    assert len({delay for delay, _ in delays}) > 100, "the delays are drawn, not fixed"


@pytest.mark.parametrize("bad", [{"first": -1.0}, {"first": 1.0, "factor": 0.5},
                                 {"first": 1.0, "jitter": 1.5}])  # fmt: skip
def test_backoff_refuses_a_schedule_that_shrinks_or_goes_negative(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        policy.Backoff(**bad)
