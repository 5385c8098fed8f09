"""The live dashboard's shared snapshot and stream limit, without a server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from workflow.errors import TooManyStreams
from workflow.service.live import SharedSnapshot, StreamLimit

T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: the browser tests' session keeps an
    event loop running on the main thread, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Counted:
    """A snapshot computation that counts its calls and takes ``seconds``."""

    def __init__(self, seconds: float = 0.05, fail: bool = False):
        self.calls = 0
        self.seconds = seconds
        self.fail = fail
        self.threads: set[str] = set()

    def __call__(self) -> bytes:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("the store went away")
        return f"snapshot {self.calls}".encode()


def test_many_streams_share_one_computation_per_interval() -> None:
    compute = Counted()
    snapshot = SharedSnapshot(compute, interval=0.3)

    async def streams() -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]], float]:
        first = await asyncio.gather(*(snapshot.after(0) for _ in range(50)))
        started = time.monotonic()
        second = await asyncio.gather(*(snapshot.after(1) for _ in range(50)))
        return first, second, time.monotonic() - started

    first, second, waited = run_apart(streams())
    assert compute.calls == 2 and threading.main_thread().name not in compute.threads
    assert set(first) == {(1, b"snapshot 1")} and set(second) == {(2, b"snapshot 2")}
    assert waited >= 0.3, "the next snapshot waits for the interval"


def test_a_fresh_snapshot_is_answered_without_computing() -> None:
    compute = Counted()
    snapshot = SharedSnapshot(compute, interval=5)

    async def late_stream() -> tuple[int, bytes]:
        await snapshot.after(0)
        return await snapshot.after(0)  # a stream that has seen nothing yet

    assert run_apart(late_stream()) == (1, b"snapshot 1") and compute.calls == 1


def test_a_stream_that_goes_away_leaves_the_computation_to_the_others() -> None:
    compute = Counted(seconds=0.2)
    snapshot = SharedSnapshot(compute, interval=0.1)

    async def streams() -> tuple[int, bytes]:
        leaving = asyncio.ensure_future(snapshot.after(0))
        staying = asyncio.ensure_future(snapshot.after(0))
        await asyncio.sleep(0.05)
        leaving.cancel()
        return await staying

    assert run_apart(streams()) == (1, b"snapshot 1") and compute.calls == 1


def test_a_failed_computation_reaches_every_stream_and_is_not_retried_at_once() -> None:
    compute = Counted(fail=True)
    snapshot = SharedSnapshot(compute, interval=0.3)

    async def streams() -> tuple[list[BaseException | tuple[int, bytes]], float]:
        failed = await asyncio.gather(*(snapshot.after(0) for _ in range(5)),
                                      return_exceptions=True)  # fmt: skip
        started = time.monotonic()
        with pytest.raises(RuntimeError):
            await snapshot.after(0)
        return failed, time.monotonic() - started

    failed, waited = run_apart(streams())
    assert all(isinstance(e, RuntimeError) for e in failed) and compute.calls == 2
    assert waited >= 0.3


def test_stream_limit_per_caller_and_in_all() -> None:
    limit = StreamLimit(total=3, per_caller=2)
    limit.open("vic", "token")
    limit.open("vic", "token")
    with pytest.raises(TooManyStreams) as refused:
        limit.open("vic", "token")
    assert refused.value.status_code == 429
    assert refused.value.to_dict() == {
        "error": "TooManyStreams", "field": "streams", "limit": 2,
        "message": "vic has 2 live streams open already, the most one token may have "
                   "(WORKFLOW_DASHBOARD_STREAMS_PER_CALLER)"}  # fmt: skip
    limit.open("val", "token")
    with pytest.raises(TooManyStreams, match=r"WORKFLOW_DASHBOARD_STREAMS\)") as full:
        limit.open("ada", "token")
    assert full.value.details == {"limit": 3}
    limit.close("vic")
    limit.open("ada", "token")
