"""The live dashboard's two guards against its viewers: one snapshot for all of them,
and a limit on how many streams are open.

Computing a snapshot reads every pipeline (2 s with 5,000 of them). Were each stream to
compute its own, 150 viewers would fill the thread pool that every other route runs in.
So a snapshot is computed in one place, in one worker thread, at most once an interval,
and every stream sends that one; a stream waiting for the next holds no thread.

Everything here runs on the event loop (the one thread that touches this state), so it
needs no lock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterable, Callable, Mapping

from anyio import to_thread
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from workflow.errors import TooManyStreams


class SharedSnapshot:
    """The newest snapshot, shared by every stream, computed afresh only when a stream
    asks for a newer one, and never sooner than ``interval`` seconds after the last one
    was done (so that the store rests between two, however long one takes).

    Args:
        compute: Makes a snapshot (in a worker thread), as the bytes a stream sends.
        interval: Least seconds from the end of one computation to the start of the next.
    """

    def __init__(self, compute: Callable[[], bytes], interval: float):
        self.interval = interval
        self._compute = compute
        self._serial = 0  # of the newest snapshot; 0: none yet
        self._newest = b""
        self._done = -float("inf")  # time.monotonic() when the last computation ended
        self._pending: asyncio.Future[None] | None = None

    async def after(self, serial: int) -> tuple[int, bytes]:
        """A snapshot newer than the one numbered ``serial``, and its number.

        The newest is answered at once if it is newer than ``serial`` and younger than
        the interval; otherwise the next one, which every stream asking meanwhile shares.

        Raises:
            Exception: whatever computing the snapshot raised (every waiting stream gets
                it; the next try comes an interval later).
        """
        fresh = time.monotonic() - self._done < self.interval
        if self._serial > serial and fresh:
            return self._serial, self._newest
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh())
            self._pending.add_done_callback(_seen)
        # A stream that goes away stops waiting; the computation goes on for the others.
        await asyncio.shield(self._pending)
        return self._serial, self._newest

    async def _refresh(self) -> None:
        try:
            await asyncio.sleep(self._done + self.interval - time.monotonic())
            self._newest = await to_thread.run_sync(self._compute)
            self._serial += 1
        finally:
            self._done = time.monotonic()
            self._pending = None


def _seen(future: asyncio.Future[None]) -> None:
    # Should every stream have gone before a computation failed, nobody awaits its error:
    # take it here, so that asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()


class StreamLimit:
    """Counts the live streams open, per caller and in all, and refuses one more than
    either limit allows.

    Args:
        total: Streams open at once, in all.
        per_caller: Streams one caller may have open at once.
    """

    def __init__(self, total: int, per_caller: int):
        self.total = total
        self.per_caller = per_caller
        self._open: Counter[str] = Counter()

    def open(self, caller: str, kind: str) -> None:
        """Count one more stream of ``caller`` (a ``kind``: token or client).

        Raises:
            TooManyStreams: ``caller`` has ``per_caller`` streams open already, or the
                server has ``total``.
        """
        if self._open[caller] >= self.per_caller:
            n = self._open[caller]
            raise TooManyStreams(f"{caller} has {n} live stream{'' if n == 1 else 's'} open "
                                 f"already, the most one {kind} may have "
                                 "(WORKFLOW_DASHBOARD_STREAMS_PER_CALLER)", field="streams",
                                 limit=self.per_caller)  # fmt: skip
        if self._open.total() >= self.total:
            raise TooManyStreams(f"the server has {self._open.total()} live streams open "
                                 "already, the most it allows (WORKFLOW_DASHBOARD_STREAMS)",
                                 field="streams", limit=self.total)  # fmt: skip
        self._open[caller] += 1

    def close(self, caller: str) -> None:
        """Count one stream of ``caller`` less."""
        self._open[caller] -= 1
        if self._open[caller] <= 0:
            del self._open[caller]


class LimitedStream(StreamingResponse):
    """A streaming reply that calls ``on_end`` once it ends, however it ends: the
    stream is done, the client went away, or an error broke it off."""

    def __init__(self, content: AsyncIterable[bytes], *, on_end: Callable[[], None],
                 media_type: str, headers: Mapping[str, str] | None = None):  # fmt: skip
        super().__init__(content, media_type=media_type, headers=headers)
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()
