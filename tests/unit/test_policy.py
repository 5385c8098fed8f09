"""Retry and backoff decisions."""

from __future__ import annotations

import pytest

from workflow import policy


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
