"""Where one attempt runs: a warm child process for functions, a process group for commands.

The parent enforces the work's timeout: a child that overruns is killed (and a fresh
one started), and so is a command's whole process group. A child that dies (an
exception that escapes, ``os._exit``, a segfault, the out-of-memory killer) ends only
its attempt, recorded with how it died.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from workflow.runner import child
from workflow.runner.outcome import Outcome, failure, tail

# Children fork from a clean server process, never from the threaded runner itself.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["workflow.runner.child", "workflow.work"])


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the work's process was killed by {name}{hint}"
    return f"the work's process exited with code {exitcode} before returning"


class Slot:
    """One warm child process that runs work functions one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._key: str | None = None  # the work being run, for abort()
        self._start()

    def _start(self) -> None:
        self._conn, theirs = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(target=child.serve, args=(theirs,), daemon=True,
                                         name="workflow-work")  # fmt: skip
        self._process.start()
        theirs.close()

    def run(self, function: str, parameters: dict[str, Any] | None, payload: dict[str, Any],
            timeout: float, key: str | None = None,
            cancelled: Callable[[], bool] | None = None) -> Outcome:  # fmt: skip
        """Run ``function(**parameters)`` in the child; at most ``timeout`` seconds.

        Args:
            key: Names the attempt for ``abort(key)``.
            cancelled: Asked once the attempt is registered; True skips it (it was
                cancelled before ``abort`` could reach it).
        """
        started = time.time()
        with self._lock:
            self._key, self._aborted = key, False
            if cancelled is not None and cancelled():
                self._key = None
                return _aborted(started)
            if not self._process.is_alive():
                self._start()
        try:
            return self._exchange(function, parameters, payload, timeout, started)
        finally:
            with self._lock:
                self._key = None

    def _exchange(self, function: str, parameters: dict[str, Any] | None,
                  payload: dict[str, Any], timeout: float, started: float) -> Outcome:  # fmt: skip
        try:
            self._conn.send((function, parameters, payload))
            if self._conn.poll(timeout):
                outcome: Outcome = self._conn.recv()
                return outcome
            self._restart()
            outcome = failure("Timeout", f"the work ran past its timeout ({timeout:.1f} s)")
            outcome.extra["reason"] = "timeout"
        except (EOFError, OSError, BrokenPipeError):
            self._process.join(timeout=5)
            aborted = self._aborted
            code = self._process.exitcode
            self._restart()
            if aborted:
                return _aborted(started)
            outcome = failure("ProcessDied", _death(code))
        outcome.started, outcome.stop = started, time.time()
        return outcome

    def abort(self, key: str | None = None) -> None:
        """Kill the attempt in progress (its ``run`` returns an ``Aborted`` failure).

        With ``key``, only if that attempt is the one in progress.
        """
        with self._lock:
            if self._key is None or (key is not None and key != self._key):
                return
            self._aborted = True
            if self._process.is_alive():
                self._process.kill()

    def _restart(self) -> None:
        with self._lock:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=5)
            self._conn.close()
            self._start()

    def close(self) -> None:
        """Stop the child."""
        with self._lock:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._conn.close()


def _aborted(started: float) -> Outcome:
    outcome = failure("Aborted", "the runner stopped this attempt")
    outcome.extra["reason"] = "aborted"
    outcome.started, outcome.stop = started, time.time()
    return outcome


def run_command(argv: list[str], timeout: float) -> Outcome:
    """Run ``argv`` without a shell, in its own process group, for at most ``timeout`` s.

    The exit code and the tails of stdout and stderr become ``results``; a non-zero
    exit, a timeout or a missing program is a failure.
    """
    started = time.time()
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace",
                                   start_new_session=True)  # fmt: skip
    except OSError as exc:
        outcome = failure("CommandNotFound" if isinstance(exc, FileNotFoundError)
                          else type(exc).__name__, f"cannot run {argv[0]!r}: {exc}")  # fmt: skip
        outcome.started = outcome.stop = started
        return outcome
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    results = {"args": argv, "returncode": process.returncode,
               "stdout": tail(stdout), "stderr": tail(stderr)}  # fmt: skip
    if timed_out:
        outcome = failure("Timeout", f"the command exceeded its timeout of {timeout:g} s",
                          stderr)  # fmt: skip
        outcome.extra["reason"] = "timeout"
    elif process.returncode != 0:
        outcome = failure("CommandFailed", f"{argv[0]} exited with code {process.returncode}",
                          stderr)  # fmt: skip
    else:
        outcome = Outcome("success")
    outcome.results = results
    outcome.started, outcome.stop = started, time.time()
    return outcome
