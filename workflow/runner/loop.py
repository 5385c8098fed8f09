"""The runner: withdraw work, run it, report the outcome, until told to stop.

Threads: the main loop withdraws (``prefetch`` at a time) and hands works to up to
``concurrency`` attempt threads, each running one work in its own slot; a heartbeat
thread keeps every held lease alive; the outbox thread delivers outcomes. On SIGTERM
or SIGINT the runner stops withdrawing, hands back what it has not started, lets
running attempts finish within ``grace`` seconds, and hands back the rest, uncounted.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from workflow import errors
from workflow.client import Client
from workflow.runner.outbox import Outbox
from workflow.runner.outcome import failure
from workflow.runner.report import Reporter
from workflow.runner.slot import Slot, run_command
from workflow.work import Work

#: Exit code of a runner that stopped with outcomes left undelivered in its spool.
UNDELIVERED = 3


def default_spool() -> Path:
    """``$XDG_DATA_HOME/workflow/spool``: outcomes not yet delivered."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "workflow" / "spool"


@dataclass
class RunnerOptions:
    """How a runner behaves (see ``workflow run --help``)."""

    pipelines: list[str]
    function: str | None = None
    site: str | None = None
    tags: list[str] = field(default_factory=list)
    lives: int | None = None
    burst: bool = False
    sleep: float = 1.0
    max_sleep: float = 30.0
    concurrency: int = 1
    prefetch: int = 1
    lease: float = 60.0
    grace: float = 30.0
    archive: Path | None = None
    spool: Path = field(default_factory=default_spool)
    runner: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


class Runner:
    """Runs works from ``options.pipelines`` through ``client`` until it should stop."""

    def __init__(self, client: Client, options: RunnerOptions, reporter: Reporter):
        self.client = client
        self.options = options
        self.report = reporter
        self.host = socket.gethostname()
        self.stopping = threading.Event()
        self.finished = 0  # attempts whose outcome was handed to the outbox
        self._held: dict[str, Work] = {}  # claimed and not yet settled
        self._running: dict[str, Slot | None] = {}
        self._claimed: dict[str, float] = {}  # monotonic claim time per work
        self._taken: set[str] = set()  # works the server took away while we held them
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # in-flight count went down
        self._in_flight = 0  # claimed works queued or running here
        self._todo: queue.Queue[Work | None] = queue.Queue()
        # The main loop claims more works once no more than this many are in flight.
        spare = 0 if options.prefetch > options.concurrency else 1
        self._refill_at = options.concurrency - spare
        self._slots: queue.Queue[Slot] = queue.Queue()
        self.outbox = Outbox(client, options.spool, self._settled)

    # -- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Work until done (lives, burst) or stopped by a signal; return the exit code."""
        self._install_signals()
        self.outbox.start()
        threading.Thread(target=self._heartbeat, name="workflow-heartbeat", daemon=True).start()
        workers = [threading.Thread(target=self._worker, name=f"workflow-attempt-{n}")
                   for n in range(self.options.concurrency)]  # fmt: skip
        for worker in workers:
            worker.start()
        idle = self.options.sleep
        # Keep up to `backlog` works claimed. Fetch when an attempt thread is free or,
        # when prefetching, while the last work still runs, so none waits for a withdraw.
        backlog = max(self.options.prefetch, self.options.concurrency)
        refill_at = self._refill_at
        while not self.stopping.is_set():
            with self._changed:
                in_flight = self._in_flight
                if self._lives_spent(in_flight):
                    break
                if in_flight > refill_at:
                    self._changed.wait(0.5)
                    continue
            works = self._withdraw(backlog - in_flight, in_flight)
            if works:
                idle = self.options.sleep
                self._queue(works)
            elif in_flight:
                with self._changed:
                    self._changed.wait(0.5)
            elif self.options.burst:
                # Our own undelivered outcomes may queue work again (a failure with
                # retries left): settle them before deciding nothing is left.
                self.outbox.wait(timeout=60)
                works = self._withdraw(backlog, 0)
                if not works:
                    break
                self._queue(works)
            else:
                self.stopping.wait(idle)
                idle = min(idle * 2, self.options.max_sleep)
        return 0 if self._stop(workers) else UNDELIVERED

    def _queue(self, works: list[Work]) -> None:
        with self._changed:
            self._in_flight += len(works)
        for work in works:
            self._todo.put(work)

    def _worker(self) -> None:
        """An attempt thread: runs queued works one after another until told to stop."""
        while (work := self._todo.get()) is not None:
            try:
                self._attempt(work)
            finally:
                with self._changed:
                    self._in_flight -= 1
                    # Wake the main loop only when it has something to do: waking it
                    # after every work costs more than the work's bookkeeping.
                    if self._in_flight <= self._refill_at:
                        self._changed.notify_all()

    def _stop(self, workers: list[threading.Thread]) -> bool:
        """Hand back unstarted work, give running work its grace, then shut down.

        Returns:
            False when outcomes are left in the spool, undelivered.
        """
        unstarted = []
        while True:
            try:
                work = self._todo.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                unstarted.append(work)
        with self._changed:
            self._in_flight -= len(unstarted)
        self._hand_back(unstarted, "runner-stopping")
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, self.options.grace):
                for slot in self._running.values():
                    if slot is not None:
                        slot.abort()
                self._changed.wait_for(lambda: self._in_flight == 0, 30)
        for _ in workers:
            self._todo.put(None)
        for worker in workers:
            worker.join(timeout=30)
        delivered = self.outbox.wait(timeout=self.options.grace)
        if not delivered:
            self.report.problem(f"stopping with outcomes not yet delivered; they stay in "
                                f"{self.options.spool} for the next runner")  # fmt: skip
        self.outbox.close()
        self.stopping.set()
        self._close_slots()
        return delivered

    def _lives_spent(self, in_flight: int) -> bool:
        lives = self.options.lives
        return lives is not None and self.finished >= lives and in_flight == 0

    def _withdraw(self, limit: int, in_flight: int) -> list[Work]:
        if self.options.lives is not None:
            limit = min(limit, self.options.lives - self.finished - in_flight)
        if limit <= 0:
            return []
        try:
            works = self.client.withdraw(
                self.options.pipelines, limit=limit, site=self.options.site,
                tags=self.options.tags or None, lease=self.options.lease,
                runner=self.options.runner, host=self.host,
            )  # fmt: skip
        except errors.ServerUnreachable as exc:
            self.report.problem(f"cannot withdraw: {exc.message}")
            return []
        now = time.monotonic()
        with self._lock:
            for work in works:
                self._held[str(work.id)] = work
                self._claimed[str(work.id)] = now
        return works

    # -- one attempt ---------------------------------------------------------------------

    def _attempt(self, work: Work) -> None:
        assert work.id is not None
        target = self.options.function or work.function
        # The timeout counts from the claim, measured on this host's own clock.
        with self._lock:
            claimed = self._claimed.pop(work.id, time.monotonic())
        timeout = max(0.1, work.timeout - (time.monotonic() - claimed))
        slot: Slot | None = None
        if target:
            slot = self._slot()
            with self._lock:
                self._running[work.id] = slot
            try:
                outcome = slot.run(target, work.parameters, work.payload(), timeout,
                                   key=work.id, cancelled=lambda: self._is_taken(work))  # fmt: skip
            finally:
                with self._lock:
                    self._running.pop(work.id, None)
                self._slots.put(slot)
        elif work.command:
            outcome = run_command(work.command, timeout)
        else:
            outcome = failure("NothingToRun", "the work has neither function nor command, "
                              "and the runner was given no function")  # fmt: skip
        if self.stopping.is_set() and outcome.extra.get("reason") == "aborted":
            self._hand_back([work], "runner-stopping")
            return
        if self.options.archive is not None:
            from workflow.runner.archive import archive_outcome

            archive_outcome(work, outcome, self.options.archive)
        self.report.attempt(work, outcome)
        with self._lock:
            self.finished += 1
        self.outbox.put(work.id, work.attempt, outcome)

    def _slot(self) -> Slot:
        try:
            return self._slots.get_nowait()
        except queue.Empty:
            return Slot()

    # -- leases --------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        period = max(0.2, min(self.options.lease / 3, 10.0))
        while True:
            # A plain sleep: after a stop, works still held (outcomes not yet delivered)
            # keep their leases at the same pace. The thread is a daemon.
            time.sleep(period)
            with self._lock:
                held = list(self._held.values())
            if self.stopping.is_set() and not held:
                return
            for work in held:
                assert work.id is not None
                try:
                    self.client.heartbeat(work.id, work.attempt, self.options.lease)
                except (errors.TransitionConflict, errors.NotFound):
                    self._taken_away(work)
                except errors.WorkflowError as exc:
                    self.report.problem(f"heartbeat of {work.id} failed: {exc.message}")

    def _taken_away(self, work: Work) -> None:
        """The server no longer has us on this work (cancelled, or the lease expired)."""
        with self._lock:
            still_held = self._held.pop(str(work.id), None)
            if still_held is None:
                return  # its outcome was delivered while the heartbeat was on its way
            self._taken.add(str(work.id))  # in case its attempt has not started yet
            slot = self._running.get(str(work.id))
        if slot is not None:
            slot.abort(str(work.id))
        self.report.problem(f"{work.id} was taken away (cancelled or lease expired); stopped")

    def _is_taken(self, work: Work) -> bool:
        with self._lock:
            return str(work.id) in self._taken

    def _settled(self, id: str, attempt: int, note: str) -> None:
        with self._lock:
            self._held.pop(id, None)
            self._taken.discard(id)
        if note != "delivered":
            self.report.problem(f"{id} attempt {attempt}: {note}")

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

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)

    def _hand_back(self, works: list[Work], reason: str) -> None:
        for work in works:
            assert work.id is not None
            try:
                self.client.release(work.id, work.attempt, reason)
                self.report.problem(f"{work.id} handed back to the queue ({reason})")
            except errors.WorkflowError as exc:
                self.report.problem(f"cannot hand back {work.id}: {exc.message}; "
                                    "its lease will expire")  # fmt: skip
            with self._lock:
                self._held.pop(work.id, None)

    def _close_slots(self) -> None:
        while True:
            try:
                self._slots.get_nowait().close()
            except queue.Empty:
                return

