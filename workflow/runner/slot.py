"""Where functions and graphs run: a warm child process (a batch of attempts per
message); commands run in ``workflow.runner.command``.

The parent enforces each work's timeout: a child that overruns is killed with its
process group (and a fresh one runs the rest of the batch). A child
that dies (an exception that escapes, ``os._exit``, a segfault, the out-of-memory
killer) ends only the attempt it was running, recorded with how it died.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from workflow.history import NodeEntry
from workflow.runner import child
from workflow.runner.outcome import failure
from workflow.wire import Outcome

# Children fork from a clean server process, never from the threaded runner itself.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["workflow.runner.child"])


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the work's process was killed by {name}{hint}"
    return f"the work's process exited with code {exitcode} before returning"


@dataclass
class Attempt:
    """One work as a slot runs it."""

    key: str  # the work id
    target: str  # the dotted path of the function
    parameters: dict[str, Any] | None
    work: dict[str, Any]  # the whole work, for a function that takes ``work``
    deadline: float  # time.monotonic() by which the attempt must have returned
    graph: dict[str, Any] | None = None  # a graph work: {"engine", "scheduler"}


class Watcher(Protocol):
    """Told what the attempts of a batch do, as they do it (``workflow.runner.live``)."""

    def noted(self, key: str, node: str, state: str) -> None:
        """A node of graph attempt ``key`` started (``running``) or ended."""

    def wrote(self, key: str, path: str, start: int, end: int) -> None:
        """Attempt ``key`` ended (before its outcome is delivered); what it wrote is bytes
        ``start`` to ``end`` of the file ``path``."""


#: Called with attempts and their outcomes, in order, as they end.
Deliver = Callable[[list[tuple[Attempt, Outcome]]], None]
#: An attempt gets at least this many seconds once it starts, whatever its deadline.
LEAST = 0.1


class Slot:
    """One warm child process that runs work functions, a batch at a time.

    ``run_many`` sends the batch in one message and hands each outcome on as it arrives;
    another thread may ``abort`` one attempt or all, or ``halt`` (start no more). Each
    attempt gets exactly one outcome: what it returned, ``Timeout``, ``ProcessDied``, or
    ``Aborted`` (reason ``aborted``, also for attempts never started).
    """

    def __init__(self, log: Path | None = None) -> None:
        #: The file the child's output goes to (None: the runner's own stdout).
        self.log = str(log) if log is not None else None
        self._written = 0  # where in it the output of the attempt at the head starts
        self._lock = threading.Lock()
        self._pending: deque[Attempt] = deque()  # sent, no outcome yet; [0] runs
        self._aborts: set[str] = set()
        self._abort_all = False
        self._halted = False
        # Set when this side kills the child: the attempt it was killed for, and why.
        self._victim: tuple[str, str] | None = None
        self._nodes: dict[str, list[bytes]] = {}  # node runs said by a graph attempt
        self._watcher: Watcher | None = None
        self._start()

    def _start(self) -> None:
        self._conn, theirs = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(target=child.serve, args=(theirs, self.log),
                                         daemon=True, name="workflow-work")  # fmt: skip
        self._process.start()
        theirs.close()
        self._ready = child.Ready(self._conn)
        self._victim = None

    def run_many(self, attempts: list[Attempt], deliver: Deliver,
                 watcher: Watcher | None = None) -> None:  # fmt: skip
        """Run ``attempts`` in order, calling ``deliver`` as their outcomes arrive (and
        telling ``watcher`` what they do)."""
        with self._lock:
            # halt() and abort() of all stay in force: they come when the runner stops.
            self._pending = deque(attempts)
            self._aborts = set()
            self._nodes = {}
            self._watcher = watcher
        if any(attempt.graph is not None for attempt in attempts):
            deliver = self._with_nodes(deliver)
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    unrun = None
                    if self._halted or self._abort_all:
                        unrun, self._pending = list(self._pending), deque()
                    else:
                        conn = self._send_batch()
                if unrun is not None:
                    now = time.time()
                    deliver([(attempt, aborted(now, now)) for attempt in unrun])
                    return
                self._watch(conn, deliver)
        finally:
            with self._lock:
                self._pending.clear()
                if self._written and self.log is not None:  # all of it was read: let it go
                    with contextlib.suppress(OSError):
                        os.truncate(self.log, 0)
                    self._written = 0

    def _send_batch(self) -> Connection:
        """Send what is pending to a live child (the lock is held)."""
        if not self._process.is_alive():
            self._process.join(timeout=5)
            self._conn.close()
            self._start()
        jobs = [(a.key, a.target, a.parameters, a.work, a.graph) for a in self._pending]
        self._written = 0  # the child empties its log file as a batch comes
        with contextlib.suppress(OSError):  # a child that just died: _watch sees it
            self._conn.send(("run", jobs))
        return self._conn

    def _watch(self, conn: Connection, deliver: Deliver) -> None:
        """Hand on outcomes until the batch is done or the child died or was killed."""
        since = time.monotonic()  # when the attempt at the head started, at the latest
        while self._pending:
            head = self._pending[0]
            wait = max(head.deadline, since + LEAST) - time.monotonic()
            if wait <= 0 or not self._ready(wait):
                self._kill(head.key, "timeout")
                self._process.join(timeout=5)  # so that _drain reads to the end
            got, dead = _drain(conn, self._ready)
            done = self._settle(got)
            if done:
                since = time.monotonic()
                deliver(done)
            if dead:
                self._died(deliver)
                return
            with self._lock:
                if self._pending and self._pending[0].key in self._aborts:
                    self._kill(self._pending[0].key, "aborted", locked=True)

    def _with_nodes(self, deliver: Deliver) -> Deliver:
        """``deliver``, with the node runs each graph attempt said put into its outcome,
        whatever ended it (a timeout or a crash included)."""

        def delivering(done: list[tuple[Attempt, Outcome]]) -> None:
            with self._lock:
                said = [self._nodes.pop(attempt.key, []) for attempt, _ in done]
            for (_, outcome), nodes in zip(done, said, strict=True):
                if nodes:
                    outcome.nodes = [NodeEntry.model_validate_json(node) for node in nodes]
            deliver(done)

        return delivering

    def _settle(self, got: list[tuple[Any, ...]]) -> list[tuple[Attempt, Outcome]]:
        done, noted, wrote = [], [], []
        with self._lock:
            for message in got:
                if len(message) == 4:  # a graph's node run started or ended
                    noted.append(self._node(*message[:3]))
                    continue
                key, said, end = message
                wrote.append((key, self._written, end))
                self._written = end
                if not self._pending or self._pending[0].key != key:
                    continue  # cannot happen: the child answers in order
                attempt = self._pending.popleft()
                if said is None:
                    now = time.time()
                    outcome = aborted(now, now)
                else:
                    outcome = _read(said)
                done.append((attempt, outcome))
            watcher = self._watcher
        if watcher is not None:
            for key, node, state in noted:
                watcher.noted(key, node, state)
            if self.log is not None:
                for key, start, end in wrote:
                    watcher.wrote(key, self.log, start, end)
        return done

    def running(self) -> tuple[str, int, str, int] | None:
        """The attempt that runs now (its key and attempt number), the file its output
        goes to and where in it that output starts; None when none runs."""
        with self._lock:
            if not self._pending or self.log is None:
                return None
            head = self._pending[0]
            return head.key, int(head.work.get("attempt") or 0), self.log, self._written

    def _node(self, key: str, kind: str, said: Any) -> tuple[str, str, str]:
        """A node's start (``said`` its id) or end (its history entry, kept for the
        outcome); as (key, node, state)."""
        if kind == "start":
            return key, str(said), "running"
        self._nodes.setdefault(key, []).append(said)
        entry = orjson.loads(said)
        return key, str(entry.get("node")), str(entry.get("outcome"))

    def _died(self, deliver: Deliver) -> None:
        """The child is gone: charge the attempt it was running; the rest run again."""
        self._process.join(timeout=5)
        now = time.time()
        with self._lock:
            if not self._pending:
                return
            head = self._pending[0]
            if self._abort_all:
                unrun, self._pending = list(self._pending), deque()
                outcomes = [(attempt, aborted(now, now)) for attempt in unrun]
            elif self._victim is None:
                outcomes = [(self._pending.popleft(),
                             failure("ProcessDied", _death(self._process.exitcode)))]
            elif self._victim[0] == head.key:
                self._pending.popleft()
                outcomes = [(head, _killed(head, self._victim[1], now))]
            else:
                outcomes = []  # killed just after it started, for another: it runs again
            start, watcher = self._written, self._watcher
        for _, outcome in outcomes:
            if outcome.stop is None:
                outcome.started, outcome.stop = now, now
        if outcomes and watcher is not None and self.log is not None:
            # What the attempt wrote up to its end (a traceback, how it crashed) counts.
            with contextlib.suppress(OSError):
                watcher.wrote(outcomes[0][0].key, self.log, start, os.stat(self.log).st_size)
        if outcomes:
            deliver(outcomes)

    def _kill(self, key: str, why: str, locked: bool = False) -> None:
        if not locked:
            with self._lock:
                self._kill(key, why, locked=True)
            return
        if self._victim is None:
            self._victim = (key, why)
        if self._process.is_alive():
            _kill_group(self._process)

    def abort(self, key: str | None = None) -> None:
        """Stop attempt ``key`` (or, without a key, every attempt of the batch): the one
        running is killed; one not yet started is skipped. Each gets an ``Aborted``
        outcome."""
        with self._lock:
            if not self._pending:
                return
            if key is None:
                self._abort_all = True
                self._kill(self._pending[0].key, "aborted", locked=True)
            elif self._pending[0].key == key:
                self._aborts.add(key)
                self._kill(key, "aborted", locked=True)
            elif any(attempt.key == key for attempt in self._pending):
                self._aborts.add(key)
                with contextlib.suppress(OSError):
                    self._conn.send(("skip", key))

    def loadable(self, target: str, timeout: float) -> str | None:
        """Why the child cannot call ``target``, in one line; None when it can, or when it
        did not say within ``timeout`` seconds (the attempts will)."""
        with self._lock:
            try:
                self._conn.send(("load", target))
                if not self._ready(timeout):
                    return None
                return self._conn.recv()[1]  # type: ignore[no-any-return]
            except (EOFError, OSError):
                return f"the work process died importing it ({_death(self._process.exitcode)})"

    def halt(self) -> None:
        """Start no more attempts of this batch; the one running finishes."""
        with self._lock:
            self._halted = True
            if self._pending:
                with contextlib.suppress(OSError):
                    self._conn.send(("halt",))

    def close(self) -> None:
        """Stop the child."""
        with self._lock:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._process.join(timeout=2)
            if self._process.is_alive():
                _kill_group(self._process)
                self._process.join(timeout=5)
            self._conn.close()
            if self.log is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.log)


def _kill_group(process: Any) -> None:
    """Kill a child and its process group: whatever its attempt started goes with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # not yet leading a group of its own
        process.kill()


def _drain(conn: Connection, ready: child.Ready) -> tuple[list[tuple[Any, ...]], bool]:
    """Every message waiting on ``conn``, and whether the child is gone."""
    got = []
    try:
        while ready():
            got.append(conn.recv())
    except (EOFError, OSError):
        return got, True
    return got, False


def _read(said: bytes) -> Outcome:
    """The outcome a child sent as JSON (it always sends a valid one; a failure saying
    so should one ever not be)."""
    try:
        return Outcome.model_validate_json(said)
    except ValidationError as exc:
        return failure("InvalidOutcome", f"the child's outcome cannot be read: {exc}")


def _killed(attempt: Attempt, why: str, now: float) -> Outcome:
    if why == "timeout":
        outcome = failure("Timeout", f"the work ran past its timeout "
                                     f"({attempt.work.get('timeout')} s)")  # fmt: skip
        outcome.reason = "timeout"
        return outcome
    return aborted(now, now)


def aborted(started: float, stop: float) -> Outcome:
    """The outcome of an attempt the runner stopped, or never started."""
    outcome = failure("Aborted", "the runner stopped this attempt")
    outcome.reason = "aborted"
    outcome.started, outcome.stop = started, stop
    return outcome
