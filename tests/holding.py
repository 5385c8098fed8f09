"""Held withdraws as the service tests send them: from another thread, checked to be
held before the test goes on."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from workflow.client import Client
from workflow.wire import Withdraw

#: Longest a held request takes to answer after its work arrived, in this test (the
#: benchmark measures the real figure; a loaded 2-core machine needs slack).
PROMPT = 2.0


def held(pool: ThreadPoolExecutor, url: str, want: Withdraw) -> Future[tuple[float, Any]]:
    """Send ``want`` from another thread; its future gives (when answered, reply)."""

    def ask() -> tuple[float, Any]:
        with Client(url) as client:
            works = client.withdraw(want)
        return time.time(), works

    future = pool.submit(ask)
    time.sleep(0.3)  # the request is held by now
    assert not future.done(), "answered at once, not held"
    return future
