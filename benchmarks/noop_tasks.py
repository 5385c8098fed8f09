"""Work functions for the benchmarks: they do nothing, so what is measured is the overhead.

Runners import this module as ``noop_tasks`` with ``benchmarks/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import time


def noop(**kwargs: object) -> None:
    """Do nothing; the work succeeds with no results."""
    return None


def stamp(ms: float = 0, **kwargs: object) -> dict[str, float]:
    """Sleep ``ms`` milliseconds (none by default), and say when: ``entered`` and ``left``
    in unix seconds."""
    entered = time.time()
    if ms:
        time.sleep(ms / 1000)
    return {"entered": entered, "left": time.time()}


def busy(ms: float = 0, **kwargs: object) -> dict[str, float]:
    """Compute for ``ms`` milliseconds (as real processing does), and say when, as
    ``stamp`` does."""
    entered = time.time()
    until = time.perf_counter() + ms / 1000
    while time.perf_counter() < until:
        pass
    return {"entered": entered, "left": time.time()}
