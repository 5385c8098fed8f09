"""Held withdraws: a runner with nothing to do asks with ``wait`` and the server answers
when there is work for it, within milliseconds of its arrival.

A held request is a future on the event loop, not a thread. The bucket verbs call
``Buckets.changed`` whenever a work may have become claimable (a deposit, a work queued
again, a resume, a priority change); that schedules a pass here, which offers the
claim to the held requests one by one in the order they came, so runners are served
first come, first served. A work queued with a backoff wakes the room when its backoff
runs out (a timer). Where several servers share a store (MongoDB), a deposit on one
cannot call the others: the store's change stream tells each of them
(``Store.follow``), or, where there is none or it was lost, each looks every ``POLL``
seconds while requests are held (``start_polling``). A server that stops answers every
held request at once, with no works.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from workflow.errors import WouldWait
from workflow.wire import LONGEST_WAIT, Doc, Withdraw
from workflow.work import TERMINAL

log = logging.getLogger("workflow.serve")
#: Seconds between looks for work while requests are held, where other servers may
#: change the store unseen (MongoDB).
POLL = 0.1
#: Seconds a pass may spend claiming on the event loop itself; the rest of the pass runs
#: in worker threads, so that many held requests do not stall other requests.
PROMPT_TIME = 0.002
#: The claim of one held request: (the withdraw, who) -> the claimed works.
Claim = Callable[[Withdraw, str | None], list[Doc]]
#: Hands claimed works back to the queue, uncounted.
GiveBack = Callable[[list[Doc]], None]


@dataclass(eq=False)
class Held:
    """One held withdraw."""

    want: Withdraw
    by: str | None
    answer: asyncio.Future[list[Doc]] = field(repr=False)
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)  # its time is up


def _running() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if one is."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _OnLoop(ABC):
    """Bound to the server's event loop at start-up; told things from any thread."""

    _loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Bind to the running event loop (call from it, at start-up)."""
        self._loop = asyncio.get_running_loop()

    def _soon(self, call: Callable[..., None], *args: Any) -> None:
        """``call(*args)`` on the event loop, from any thread."""
        if self._loop is not None:
            with suppress(RuntimeError):  # the loop has closed: the server is gone
                self._loop.call_soon_threadsafe(call, *args)

    def _now_or_soon(self, call: Callable[..., None], *args: Any) -> None:
        """``call(*args)`` now when on the event loop (a request answered on the loop, a
        deposit say: a trip round the loop is a good part of a pickup), else ``_soon``."""
        if self._loop is not None and _running() is self._loop:
            call(*args)
        else:
            self._soon(call, *args)

    def close_soon(self) -> None:
        """``close``, from any thread (a signal handler)."""
        self._soon(self.close)

    @abstractmethod
    def close(self) -> None:
        """The server stops: answer everything waiting now."""


class WaitingRoom(_OnLoop):
    """The held withdraws of one server.

    Args:
        claim: Claims for one withdraw (on the event loop when ``promptly`` says the
            store can start at once, else in a worker thread).
        give_back: Hands back works claimed for a request that stopped waiting in the
            meantime (its time ran out, its client went away); in a worker thread.
        poll: Look for work every ``POLL`` seconds while requests are held (a store
            other servers write to).
        longest: The longest a request is held, whatever it asks for.
        promptly: The store's ``promptly`` (``Store.promptly``): a claim inside either
            starts at once or raises ``WouldWait``.
    """

    def __init__(self, claim: Claim, give_back: GiveBack, *, poll: bool = False,
                 longest: float = LONGEST_WAIT,
                 promptly: Callable[[], AbstractContextManager[bool]] | None = None):  # fmt: skip
        self._claim = claim
        self._promptly = promptly
        self._longest = longest
        self._give_back = give_back
        self._poll = poll
        self._held: list[Held] = []
        self._pass: asyncio.Task[None] | None = None
        self._passing = False  # a pass runs right here (_offer_here)
        self._again = False  # a wake came during a pass: run another
        self._due: list[float] = []  # unix times at which backoffs run out (a heap)
        self._timer: asyncio.TimerHandle | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Bind to the running event loop (call from it, at start-up)."""
        super().start()
        if self._poll:
            self._start_polling()

    def start_polling(self) -> None:
        """Look every ``POLL`` seconds from now on, while requests are held: other
        servers' changes go unheard otherwise. From any thread."""
        self._poll = True
        self._soon(self._start_polling)

    def changed(self, at: float | None = None) -> None:
        """A work may be claimable now, or at ``at`` (unix time); from any thread."""
        if not self._closed:
            self._now_or_soon(self._changed, at)

    def enter(self, want: Withdraw, by: str | None) -> Held | None:
        """Hold ``want`` for up to ``want.wait`` seconds: its ``answer`` is resolved with
        the works claimed for it, or with none when the time is up or the server stops.
        None when it may not wait. The caller awaits the answer itself (each layer of
        futures between would cost a trip round the loop) and then calls ``leave``."""
        assert self._loop is not None, "start() first"
        seconds = min(want.wait, self._longest)
        if self._closed or seconds <= 0:
            return None
        held = Held(want, by, self._loop.create_future())
        held.timer = self._loop.call_later(seconds, self._answer, held, [])
        self._held.append(held)
        return held

    def leave(self, held: Held) -> None:
        """``held`` waits no more (answered, or its client went away)."""
        self._drop(held)
        if held.timer is not None:
            held.timer.cancel()
        if not held.answer.done():
            held.answer.cancel()  # a claim still under way hands its works back

    def end(self, runner: str, by: str | None) -> int:
        """Answer the held withdraws of ``runner`` (claimed under the token ``by``) now,
        with no works; how many there were."""
        ended = [h for h in self._held if h.want.runner == runner and h.by == by]
        for held in ended:
            self._answer(held, [])
        return len(ended)

    def close(self) -> None:
        """The server stops: answer every held request now, with no works."""
        self._closed = True
        for held in list(self._held):
            self._answer(held, [])
        for task in (self._pass, self._poller):
            if task is not None:
                task.cancel()
        if self._timer is not None:
            self._timer.cancel()

    # -- on the event loop ---------------------------------------------------------------

    def _changed(self, at: float | None) -> None:
        if at is not None and at > time.time():
            heapq.heappush(self._due, at)
            self._arm()
            return
        self._wake()

    def _wake(self) -> None:
        if not self._held or self._closed:
            return
        if self._passing or (self._pass is not None and not self._pass.done()):
            self._again = True
            return
        self._again = False
        self._passing = True
        try:
            offered = self._offer_here()
        finally:
            self._passing = False
        if not offered or self._again:
            assert self._loop is not None
            self._pass = self._loop.create_task(self._offer())

    def _offer_here(self) -> bool:
        """Offer the claim to the held requests right here, oldest first, while the store
        can start at once (``Store.promptly``) and ``PROMPT_TIME`` lasts: a trip round
        the loop or a thread hand-off is a good part of a pickup. True when every held
        request was offered it."""
        assert self._loop is not None
        until = self._loop.time() + PROMPT_TIME
        for held in list(self._held):
            if held.answer.done():
                continue
            works = self._claim_here(held) if self._loop.time() < until else None
            if works is None:
                return False
            if works:
                self._answer(held, works)
        return True

    def _claim_here(self, held: Held) -> list[Doc] | None:
        """The works claimed for ``held`` on the event loop; None when the store cannot
        start at once."""
        if self._promptly is None:
            return None
        try:
            with self._promptly() as ready, suppress(WouldWait):
                if ready:
                    return self._claim(held.want, held.by)
        except Exception:  # noqa: BLE001 - the request is answered all the same
            log.exception("a held withdraw could not claim")
            return []
        return None

    async def _offer(self) -> None:
        """Offer the claim to every held request, oldest first, each in a worker thread,
        until a pass finds no wake came meanwhile."""
        while True:
            self._again = False
            for held in list(self._held):
                if held.answer.done():
                    continue
                try:
                    works = await to_thread.run_sync(self._claim, held.want, held.by)
                except Exception:  # noqa: BLE001 - the request is answered all the same
                    log.exception("a held withdraw could not claim")
                    works = []
                if works and not self._answer(held, works):
                    await to_thread.run_sync(self._give_back, works)
            if not self._again or self._closed:
                return

    def _answer(self, held: Held, works: list[Doc]) -> bool:
        """Resolve ``held`` with ``works``; False when it was answered already."""
        self._drop(held)
        if held.timer is not None:
            held.timer.cancel()
        if held.answer.done():
            return False
        held.answer.set_result(works)
        return True

    def _drop(self, held: Held) -> None:
        if held in self._held:
            self._held.remove(held)

    def _arm(self) -> None:
        """Set the timer for the earliest backoff still to run out."""
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._due:
            delay = max(0.0, self._due[0] - time.time())
            self._timer = self._loop.call_later(delay, self._ran_out)

    def _ran_out(self) -> None:
        """Wake the held requests for the backoffs that have run out by now. The loop's
        clock is not the wall clock: a timer may fire a little early, and then only sets
        itself again (a claim made then would find the work not yet due, and nothing
        would wake the request once it is)."""
        self._timer = None
        now = time.time()
        ran_out = False
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
            ran_out = True
        if ran_out:
            self._wake()
        self._arm()

    def _start_polling(self) -> None:
        if self._poller is None and not self._closed:
            assert self._loop is not None
            self._poller = self._loop.create_task(self._polling())
            self._wake()  # whatever came unheard before

    async def _polling(self) -> None:
        while not self._closed:
            await asyncio.sleep(POLL)
            if self._held:
                self._wake()

class Finishes(_OnLoop):
    """Reads waiting for a work to finish (``GET /buckets/work/{id}?wait=``): each is a
    future on the event loop, resolved when the bucket verbs finish that work
    (``Buckets.finished``). Where other servers may finish it unheard (``poll``), a read
    also looks again every ``POLL`` seconds."""

    def __init__(self, *, poll: bool = False):
        self._poll = poll
        self._watched: dict[str, list[asyncio.Future[None]]] = {}

    def start_polling(self) -> None:
        """Every read looks again every ``POLL`` seconds from now on: other servers'
        finishes go unheard otherwise. From any thread."""
        self._poll = True
        self._soon(self._wake_all)  # the reads waiting now look again, at that pace

    def finished(self, id: str) -> None:
        """Work ``id`` has finished; from any thread."""
        if id in self._watched:
            self._now_or_soon(self._wake, id)

    async def read(self, get: Callable[[str], Doc], id: str, seconds: float) -> Doc:
        """Work ``id`` (``get`` reads it, in a worker thread) once it has finished, or as
        it is after ``seconds``.

        Each look starts watching before it reads, so that a finish between the read and
        the wait still wakes it."""
        assert self._loop is not None, "start() first"
        deadline = self._loop.time() + seconds
        while True:
            future: asyncio.Future[None] = self._loop.create_future()
            self._watched.setdefault(id, []).append(future)
            try:
                doc = await to_thread.run_sync(get, id)
                left = deadline - self._loop.time()
                if doc["status"] in TERMINAL or left <= 0:
                    return doc
                with suppress(TimeoutError):
                    await asyncio.wait_for(future, min(left, POLL) if self._poll else left)
            finally:
                self._unwatch(id, future)

    def _unwatch(self, id: str, future: asyncio.Future[None]) -> None:
        waiting = self._watched.get(id, [])
        if future in waiting:
            waiting.remove(future)
        if not waiting:
            self._watched.pop(id, None)

    def close(self) -> None:
        """The server stops: every waiting read answers now."""
        self._wake_all()

    def _wake_all(self) -> None:
        for id in list(self._watched):
            self._wake(id)

    def _wake(self, id: str) -> None:
        for future in self._watched.get(id, []):
            if not future.done():
                future.set_result(None)
