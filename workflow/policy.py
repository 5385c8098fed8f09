"""Retry and backoff decisions, as pure functions.

``attempt`` on a work counts claims (it is the fencing token a runner must quote). What
``retries`` bounds is the number of *counted* attempts: those that ended in success,
failure or a lost lease. An attempt handed back by a stopping runner, or one whose
function asked for a retry, is not counted. A work is thus attempted at most
``1 + retries`` times.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow import errors

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


@dataclass
class Backoff:
    """Successive waits between tries of one thing: ``first``, then each ``factor``
    times the last, at most ``cap``; ``reset()`` starts again from ``first``.

    ``jitter`` (0 to 1) takes a random share of up to that fraction off each delay:
    0 gives the schedule exactly, 1 any delay from 0 up to it ("full jitter"), so
    clients that failed together do not all come back together.

    Args:
        first: The first delay in seconds.
        factor: Growth per delay given.
        cap: Upper bound of every delay.
        jitter: Fraction of each delay that may be taken off at random.
        rand: Source of uniform numbers in [0, 1) (``random.random``; tests fix it).

    Raises:
        ConfigurationError: ``first`` negative, ``factor`` below 1 or ``jitter``
            outside 0 to 1.
    """

    first: float
    factor: float = 2.0
    cap: float = float("inf")
    jitter: float = 0.0
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    #: The next delay before jitter.
    current: float = field(init=False)

    def __post_init__(self) -> None:
        if self.first < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise errors.ConfigurationError(
                f"a backoff needs first >= 0, factor >= 1 and jitter in [0, 1]; got "
                f"first={self.first}, factor={self.factor}, jitter={self.jitter}")
        self.reset()

    def reset(self) -> None:
        """Start again from ``first`` (the thing succeeded)."""
        self.current = min(self.first, self.cap)

    def next(self) -> float:
        """The next delay in seconds; the one after it is ``factor`` times longer."""
        delay = self.current
        # Growing the last value (not first * factor ** n) cannot overflow however
        # long a delivery keeps failing.
        self.current = min(self.current * self.factor, self.cap)
        return delay - delay * self.jitter * self.rand()


#: Seconds the server waits past a work's timeout before it declares the attempt lost:
#: the runner enforces the timeout itself and needs a moment to report it.
TIMEOUT_SLACK = 5.0


def lease_deadline(start: float, timeout: float) -> float:
    """The latest a lease on a work started at ``start`` may expire."""
    return start + timeout + TIMEOUT_SLACK
