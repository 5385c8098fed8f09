"""How many works a runner keeps in hand: ``--prefetch`` pinned, else its own choice.

A runner that claims one work at a time pays a round trip per work; one that claims
many lets short works run back to back, but a claimed work waits in the runner until
those before it have run, and its timeout counts from its claim. Left to choose, a
runner keeps in hand as many works as it expects to finish within ``FRACTION`` (5%) of
the shortest timeout among its recent works, judged by the slowest of its last
``WINDOW`` attempts, and never more than ``CAP``. It starts at one work (it knows
nothing yet) and at most doubles from one withdraw to the next, so a few quick works
do not make it claim hundreds; a slow attempt brings it down at once.
"""

from __future__ import annotations

from collections import deque

#: The share of a work's timeout that it may spend waiting in the runner.
FRACTION = 0.05
#: The most works an auto-prefetching runner keeps in hand.
CAP = 500
#: Attempts whose durations and timeouts the choice looks at.
WINDOW = 100
#: An attempt counts as taking at least this long (the runner's own cost per work).
LEAST = 0.001


class Pace:
    """The runner's backlog: how many works it keeps claimed, queued or running.

    Not thread-safe: the runner calls it under its own lock.
    """

    def __init__(self, concurrency: int, prefetch: int | None = None):
        self.concurrency = concurrency
        self.pinned = prefetch
        self._durations: deque[float] = deque(maxlen=WINDOW)
        self._timeouts: deque[float] = deque(maxlen=WINDOW)
        self._last = concurrency

    def ran(self, seconds: float, timeout: float) -> None:
        """An attempt of a work with ``timeout`` took ``seconds`` (a pinned backlog does
        not look)."""
        if self.pinned is not None:
            return
        self._durations.append(max(seconds, LEAST))
        self._timeouts.append(timeout)

    def backlog(self) -> int:
        """How many works to keep in hand now."""
        if self.pinned is not None:
            return max(self.pinned, self.concurrency)
        if not self._durations:
            return self.concurrency
        # The last work in hand waits for backlog / concurrency attempts before it.
        allowed = FRACTION * min(self._timeouts) * self.concurrency / max(self._durations)
        chosen = max(self.concurrency, min(int(allowed), CAP, 2 * self._last))
        self._last = chosen
        return chosen

    def refill_at(self, backlog: int) -> int:
        """Claim more once no more than this many works are in hand: with a backlog,
        while half of it is still to run, so that no attempt thread waits for a withdraw;
        without, as soon as an attempt thread is free."""
        return backlog // 2 if backlog > self.concurrency else self.concurrency - 1
