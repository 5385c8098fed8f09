"""Retry and backoff decisions, as pure functions.

``attempt`` on a work counts claims (it is the fencing token a runner must quote). What
``retries`` bounds is the number of *counted* attempts: those that ended in success,
failure or a lost lease. An attempt handed back by a stopping runner, or one whose
function asked for a retry, is not counted. A work is thus attempted at most
``1 + retries`` times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Outcomes that use up one of the ``1 + retries`` attempts.
COUNTED = frozenset({"success", "failure", "lost"})
#: Default first backoff delay in seconds; doubled per counted attempt.
BACKOFF = 5.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP = 3600.0


def counted_attempts(history: Iterable[Mapping[str, Any]]) -> int:
    """How many attempts in ``history`` count against ``retries``."""
    return sum(
        1 for entry in history if entry.get("kind") == "attempt" and entry.get("outcome") in COUNTED
    )


def may_retry(history: Iterable[Mapping[str, Any]], retries: int) -> bool:
    """True when another attempt is allowed after the ones recorded in ``history``."""
    return counted_attempts(history) < 1 + retries


def backoff_delay(counted: int, base: float | None = None, *, factor: float = BACKOFF_FACTOR,
                  cap: float = BACKOFF_CAP) -> float:  # fmt: skip
    """Seconds to wait before the next attempt after ``counted`` counted attempts.

    Args:
        counted: Counted attempts so far (at least 1 when retrying).
        base: Delay after the first attempt; ``None`` means ``BACKOFF``; 0 disables.
        factor: Growth per further attempt.
        cap: Upper bound.

    Returns:
        ``base * factor ** (counted - 1)``, at most ``cap``, never negative.
    """
    base = BACKOFF if base is None else base
    if base <= 0 or counted <= 0:
        return 0.0
    return float(min(cap, base * factor ** (counted - 1)))

#: Seconds the server waits past a work's timeout before it declares the attempt lost:
#: the runner enforces the timeout itself and needs a moment to report it.
TIMEOUT_SLACK = 5.0


def lease_deadline(start: float, timeout: float) -> float:
    """The latest a lease on a work started at ``start`` may expire."""
    return start + timeout + TIMEOUT_SLACK
