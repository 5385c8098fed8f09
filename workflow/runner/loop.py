"""The runner: withdraw work, run it, report the outcome, until told to stop.

Threads: the main loop withdraws (``prefetch`` at a time, or as many as
``runner/pace.py`` chooses) and hands works to up to ``concurrency`` attempt threads,
each running chunks of works in its own slot; a heartbeat thread keeps every held lease
alive; the outbox thread delivers outcomes. A runner pinned to one work at a time
(prefetch 1, concurrency 1) runs each in the main loop itself: the loop would only wait
for it, and two thread switches per work cost more than the bookkeeping. So does a
runner of one attempt at a time with a lone work that came while it was idle, the
common case of online processing: its start is a thread switch sooner. On SIGTERM or
SIGINT the runner stops withdrawing, hands back what it has not started, lets running
attempts finish within ``grace`` seconds, and hands back the rest, uncounted.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType

from workflow import errors
from workflow.client import Client
from workflow.policy import Backoff
from workflow.runner.archive import archive_outcome
from workflow.runner.command import run_command
from workflow.runner.graphs import Graphs
from workflow.runner.leases import Doc, Leases
from workflow.runner.live import Live, log_folder
from workflow.runner.options import RunnerOptions
from workflow.runner.outbox import Outbox
from workflow.runner.outcome import failure
from workflow.runner.pace import Pace
from workflow.runner.report import Reporter
from workflow.runner.slot import Attempt, Slot, aborted
from workflow.runner.slots import Slots
from workflow.wire import Outcome, Withdraw

#: Exit code of a runner that stopped with outcomes left undelivered in its spool.
UNDELIVERED = 3
#: Exit code of a runner that stopped because of a fault of its own (it says which).
FAULT = 4
#: Seconds an idle runner's withdraw waits at the server for work: the server answers
#: as soon as work comes, so an idle runner sends one request per HOLD seconds.
HOLD = 20.0
#: Seconds the check of the runner's function may take to import it; a slower import
#: is not checked (its attempts say what goes wrong).
IMPORT_CHECK = 120.0


class Runner:
    """Runs works from ``options.pipelines`` through ``client`` until it should stop.

    Works travel as the plain dicts the server sent (no model per work: a runner may
    handle thousands a second). Attempt threads take them in chunks, each run as one
    batch in a warm child; outcomes go to the outbox as they arrive.
    """

    def __init__(self, client: Client, options: RunnerOptions, reporter: Reporter):
        self.client = client
        self.options = options
        self.report = reporter
        self.host = socket.gethostname()
        # What each withdraw asks for; only its limit changes.
        self._want = Withdraw(pipelines=options.pipelines, site=options.site,
                              tags=options.tags or None, lease=options.lease,
                              runner=options.runner, host=self.host)  # fmt: skip
        self.stopping = threading.Event()
        self.finished = 0  # attempts whose outcome was handed to the outbox
        self.failed = False  # the runner itself failed (see _worker)
        self._running: dict[str, Slot] = {}  # handed to a slot, no outcome yet
        self._claimed: dict[str, float] = {}  # monotonic claim time per work
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # in-flight count went down
        self._ready = threading.Condition(self._lock)  # works queued for attempt threads
        self._in_flight = 0  # claimed works queued or running here
        self._todo: deque[Doc] = deque()
        self._closing = False  # attempt threads take nothing more
        self.pace = Pace(options.concurrency, options.prefetch)
        # Withdraw more once no more than this many works are in hand (runner/pace.py).
        self._refill_at = self.pace.refill_at(self.pace.backlog())
        # One work at a time: the main loop runs it (see the module's docstring).
        self._serial = options.concurrency == 1 and options.prefetch == 1
        self._here = False  # the main loop is running works itself
        logs = log_folder(options.spool, options.runner)
        self._slots = Slots(logs)  # the first child warms while the first withdraw goes out
        self.leases = Leases(client, options, reporter, self._lock, self._running, self.stopping)
        self.outbox = Outbox(client, options.spool, self.leases.settled)
        self.live = Live(client, logs, reporter, self._slots)
        self._can_hold = True  # the server can hold a withdraw until work comes
        self._hold = min(HOLD, options.lease / 2)  # seconds it may hold one
        self._carried = False  # the last withdraw carried outcomes (so it did not wait)
        self.graphs = Graphs(options.graph_engine, options.archive)

    # -- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Work until done (lives, burst) or stopped by a signal; return the exit code.

        Raises:
            InvalidWork: the runner's function cannot be called (nothing was claimed).
        """
        if self.options.function:  # before anything is claimed (see Slots.check)
            self._slots.check(self.options.function, IMPORT_CHECK)
        self._install_signals()
        self.outbox.start()
        self.leases.start()
        workers = [threading.Thread(target=self._worker, name=f"workflow-attempt-{n}")
                   for n in range(0 if self._serial else self.options.concurrency)]  # fmt: skip
        for worker in workers:
            worker.start()
        idle = Backoff(first=self.options.sleep, factor=2.0, cap=self.options.max_sleep)
        while not self.stopping.is_set():
            with self._changed:
                in_flight = self._in_flight
                if self._lives_spent(in_flight):
                    break
                if in_flight > self._refill_at:
                    self._changed.wait(0.5)
                    continue
                backlog = self.pace.backlog()
                self._refill_at = self.pace.refill_at(backlog)
            # The withdraw waits at the server for work to come, also while works run
            # here (their outcomes then go out on their own); a server that cannot hold
            # one: the back-off below. Held at most half a lease: an idle runner's
            # requests keep it online in the server's record of runners.
            hold = self._hold if self._can_hold and not self.options.burst else 0
            asked = time.monotonic()
            works = self._withdraw(backlog - in_flight, in_flight, hold)
            if not works and hold and self._carried:
                continue  # it carried outcomes, so it did not wait: now it may
            with self._lock:
                in_flight = self._in_flight
            if works:
                idle.reset()
                self._hand(works, in_flight)
            elif hold and self._can_hold and time.monotonic() - asked >= hold / 2:
                continue  # held for its time: ask again
            elif in_flight:  # wait for room rather than ask again at once
                self._fewer_than(in_flight, 0.5)
            elif self.options.burst:
                # Our own undelivered outcomes may queue work again (a failure with
                # retries left): settle them before deciding nothing is left.
                self.outbox.wait(timeout=60)
                works = self._withdraw(backlog, 0)
                if not works:
                    break
                self._hand(works, 0)
            else:  # not held (the server cannot, or holds less: WORKFLOW_MAX_WAIT): back off
                self.stopping.wait(idle.next())
        delivered = self._stop(workers)
        if self.failed:
            return FAULT
        return 0 if delivered else UNDELIVERED

    def _fewer_than(self, in_flight: int, seconds: float) -> None:
        """Wait up to ``seconds`` for fewer than ``in_flight`` works in hand."""
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight < in_flight, seconds)

    def _hand(self, works: list[Doc], in_flight: int) -> None:
        """Run ``works`` here, or queue them for the attempt threads."""
        if self._serial or (self.options.concurrency == 1 and len(works) == 1
                            and not in_flight):  # fmt: skip
            self._run_here(works)
        else:
            self._queue(works)

    def _run_here(self, works: list[Doc]) -> None:
        """Run ``works`` in the main loop: all of them when pinned to one at a time, or a
        lone work that came to an idle runner (a thread switch saved on its start)."""
        with self._lock:
            self._in_flight += len(works)
        self._here = True
        try:
            self._run_chunk(works)
        finally:
            self._here = False

    def _queue(self, works: list[Doc]) -> None:
        with self._lock:
            self._in_flight += len(works)
            self._todo.extend(works)
            self._ready.notify_all()

    def _take(self) -> list[Doc] | None:
        """The next chunk for an attempt thread, once there is one: a share of what is
        queued, so that every thread gets some and none waits while another holds a long
        list. None when closing."""
        with self._ready:
            self._ready.wait_for(lambda: self._todo or self._closing)
            if not self._todo or self._closing:
                return None
            size = -(-len(self._todo) // self.options.concurrency)
            return [self._todo.popleft() for _ in range(size)]

    def _worker(self) -> None:
        """An attempt thread: runs chunks of queued works until told to stop."""
        while (chunk := self._take()) is not None:
            self._run_chunk(chunk)

    def _run_chunk(self, chunk: list[Doc]) -> None:
        unsettled = {work["id"]: work for work in chunk}
        try:
            self._attempts(chunk, unsettled)
        except Exception as exc:  # noqa: BLE001 - a fault of the runner, not of a work
            # Say so, hand back what has no outcome and stop: the works are not lost,
            # and a runner that cannot run them should not take more.
            self.report.problem(f"runner fault, stopping: {type(exc).__name__}: {exc}")
            self.failed = True
            self.stopping.set()
            with self._lock:
                slots = {self._running[id] for id in unsettled if id in self._running}
            for slot in slots:
                slot.abort()  # nothing of ours may still run what goes back
            self.leases.hand_back(list(unsettled.values()), "runner-fault")
            with self._changed:
                self._in_flight -= len(unsettled)
                self._changed.notify_all()

    def _stop(self, workers: list[threading.Thread]) -> bool:
        """Hand back unstarted work, give running work its grace, then shut down.

        Returns:
            False when outcomes are left in the spool, undelivered.
        """
        with self._lock:
            unstarted = list(self._todo)
            self._todo.clear()
            self._closing = True
            self._in_flight -= len(unstarted)
            self._ready.notify_all()
            slots = self._slots.every()
        self.leases.hand_back(unstarted, "runner-stopping")
        for slot in slots:
            slot.halt()  # what a slot has not started yet comes back, handed back too
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, self.options.grace):
                for slot in slots:
                    slot.abort()
                self._changed.wait_for(lambda: self._in_flight == 0, 30)
        for worker in workers:
            worker.join(timeout=30)
        delivered = self.outbox.wait(timeout=self.options.grace)
        if delivered:  # the server answers: it shows the runner stopped from now on
            self.leases.presence.goodbye()
        else:
            self.report.problem(f"stopping with outcomes not yet delivered; they stay in "
                                f"{self.options.spool} for the next runner")  # fmt: skip
        self.outbox.close()
        self.live.close()
        self.stopping.set()
        self._slots.close_idle()
        self.graphs.close()
        return delivered

    def _lives_spent(self, in_flight: int) -> bool:
        lives = self.options.lives
        return lives is not None and self.finished >= lives and in_flight == 0

    def _withdraw(self, limit: int, in_flight: int, hold: float = 0.0) -> list[Doc]:
        """Claim up to ``limit`` works, the server holding the request up to ``hold``
        seconds for works to come."""
        if self.options.lives is not None:
            limit = min(limit, self.options.lives - self.finished - in_flight)
        if limit <= 0:
            return []
        # Outcomes that finished just now go with the withdraw: one request for both. The
        # server answers such a request at once (its reply settles them): no waiting.
        riders = self.outbox.take_riders(hold=hold > 0)
        self._carried = bool(riders)
        want = self._want.model_copy(update={"limit": limit, "wait": 0 if riders else hold})
        try:
            if riders:
                replies, works = self.client.exchange(riders, want)
            else:
                works = self.client.withdraw(want)
        except BaseException as exc:
            self.outbox.riders_failed(riders)  # they go on their own
            if hold and isinstance(exc, errors.InvalidWork) and "wait" in (exc.field or ""):
                self._can_hold = False  # an older server: the idle back-off instead
                self.report.problem("the server cannot hold a withdraw; polling instead")
                return []
            if not isinstance(exc, errors.ServerUnreachable):
                raise
            self.report.problem(f"cannot withdraw: {exc.message}")
            return []
        finally:
            self.outbox.held_ended()
        if riders:
            self.outbox.riders_answered(riders, replies)
        self.leases.hold(works)
        now = time.monotonic()
        with self._lock:
            for work in works:
                self._claimed[work["id"]] = now
        return works

    # -- attempts ------------------------------------------------------------------------

    def _attempts(self, chunk: list[Doc], unsettled: dict[str, Doc]) -> None:
        """Run a chunk in order: functions and graphs as batches in a slot, commands one
        by one. Works leave ``unsettled`` as their outcomes are handed on."""

        def finished(done: list[tuple[Doc, Outcome]]) -> None:
            for work, _ in done:
                unsettled.pop(work["id"], None)
            self._finished(done)

        batch: list[Attempt] = []
        for work in chunk:
            attempt = None if self.stopping.is_set() else self._attempt(work)
            if attempt is not None:
                batch.append(attempt)
                continue
            if batch:
                self._run_batch(batch, finished)
                batch = []
            started = time.time()
            if self.stopping.is_set():
                outcome = aborted(started, started)
            elif work.get("command"):
                outcome = run_command(work["command"], self._time_left(work),
                                      self.live.command(work))  # fmt: skip
            else:
                outcome = failure("NothingToRun", "the work has no function, command or "
                                  "graph, and the runner was given no function")  # fmt: skip
                outcome.started = outcome.stop = started
            finished([(work, outcome)])
        if batch:
            self._run_batch(batch, finished)

    def _attempt(self, work: Doc) -> Attempt | None:
        """How a slot runs ``work``; None for a work it does not run (a command)."""
        target = self.options.function or work.get("function")
        if target:
            return Attempt(work["id"], target, work.get("parameters"), work, self._deadline(work))
        if work.get("graph"):
            how = self.graphs.how(work)  # may start the Dask cluster: before the deadline
            return Attempt(work["id"], "", None, work, self._deadline(work), graph=how)
        return None

    def _deadline(self, work: Doc) -> float:
        return time.monotonic() + self._time_left(work)

    def _time_left(self, work: Doc) -> float:
        # The timeout counts from the claim, measured on this host's own clock.
        with self._lock:
            claimed = self._claimed.pop(work["id"], time.monotonic())
        return max(0.1, float(work["timeout"]) - (time.monotonic() - claimed))

    def _run_batch(self, batch: list[Attempt],
                   finished: Callable[[list[tuple[Doc, Outcome]]], None]) -> None:  # fmt: skip
        slot = self._slots.take()
        with self._lock:
            taken = [a for a in batch if a.key in self.leases.taken]
            batch = [a for a in batch if a.key not in self.leases.taken]
            for attempt in batch:
                self._running[attempt.key] = slot
        now = time.time()
        if taken:  # cancelled before it started
            finished([(a.work, aborted(now, now)) for a in taken])
        try:
            slot.run_many(batch, lambda done: finished([(attempt.work, outcome)
                          for attempt, outcome in done]), self.live)  # fmt: skip
        finally:
            self._slots.give_back(slot)

    def _finished(self, done: list[tuple[Doc, Outcome]]) -> None:
        """Outcomes of attempts: report them and hand them to the outbox."""
        back, records, reported = [], [], []
        for work, outcome in done:
            stopped = self.stopping.is_set() and outcome.reason == "aborted"
            self.live.end(work, outcome, None if stopped else self.options.archive)
            if stopped:
                back.append(work)
                continue
            if self.options.archive is not None:
                archive_outcome(work, outcome, self.options.archive)
            reported.append((work, outcome))
            outcome.id, outcome.attempt = work["id"], work["attempt"]
            records.append(outcome)
        # When the main loop is to withdraw next, the outcomes ride with that request;
        # otherwise delivery starts at once, while we report.
        ride = self._in_flight - len(done) <= self._refill_at and not self.stopping.is_set()
        self.outbox.put_many(records, ride=ride)
        self.report.attempts(reported)
        self.leases.hand_back(back, "runner-stopping")
        with self._changed:
            self.finished += len(records)
            for work, outcome in done:
                self._running.pop(work["id"], None)
                if outcome.stop is not None:
                    self.pace.ran(outcome.stop - (outcome.started or outcome.stop),
                                  float(work["timeout"]))  # fmt: skip
            self._in_flight -= len(done)
            # Wake the main loop only when it has something to do: waking it after
            # every outcome costs more than the outcome's bookkeeping.
            if self._in_flight <= self._refill_at:
                self._changed.notify_all()

    # -- stopping ------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            if self.stopping.is_set():  # a second signal: stop now
                self.options.grace = 0
            self.stopping.set()
            self.report.problem(f"{signal.Signals(signum).name}: finishing running work, "
                                f"then stopping (grace {self.options.grace:g} s)")  # fmt: skip
            if self.outbox.holding:  # the main loop waits at the server for work: end that
                threading.Thread(target=self._end_hold, name="workflow-end-hold",
                                 daemon=True).start()  # fmt: skip
            if self._here:
                # The work runs right here, so _stop cannot time its grace: a thread
                # does (never this handler, which may have interrupted a slot's lock).
                cutoff = threading.Timer(self.options.grace, self._abort_running)
                cutoff.daemon = True
                cutoff.start()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)

    def _end_hold(self) -> None:
        # Again until the held withdraw has returned: it may reach the server only after
        # the first end did (its time runs out all the same).
        deadline = time.monotonic() + HOLD
        while self.outbox.holding and time.monotonic() < deadline:
            with contextlib.suppress(errors.WorkflowError):
                self.client.end_wait(self.options.runner)
            time.sleep(0.2)

    def _abort_running(self) -> None:
        """Stop every attempt still running (its work is handed back)."""
        with self._lock:
            slots = set(self._running.values())
        for slot in slots:
            slot.abort()
