"""A command's attempt: its program run without a shell, in a process group of its own,
for at most the work's time left.

What it writes to stdout and stderr goes, as it writes it, to the attempt's log file
(``workflow.runner.live`` reads it from there), and the end of each becomes the
``results``; however much it writes, only those ends are held in memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO, BinaryIO

from workflow.runner.outcome import TAIL, failure, tail
from workflow.runner.provenance import basic
from workflow.wire import Outcome

#: Bytes read from a pipe at once.
READ = 1 << 16


class _Tail:
    """The last bytes of a stream, at most enough for ``TAIL`` characters."""

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= 4 * TAIL:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


def _pump(pipe: IO[bytes], kept: _Tail, log: BinaryIO | None, lock: threading.Lock) -> None:
    """Copy ``pipe`` to ``log`` (shared with the other stream) until it closes."""
    with pipe:
        while data := pipe.read1(READ):  # type: ignore[attr-defined]
            kept.add(data)
            if log is not None:
                with lock:
                    log.write(data)
                    log.flush()


def run_command(argv: list[str], timeout: float, log: str | None = None) -> Outcome:
    """Run ``argv`` for at most ``timeout`` seconds, its output into the file ``log``.

    The exit code and the tails of stdout and stderr become ``results``; a non-zero
    exit, a timeout or a missing program is a failure. The provenance is the runner's
    (``provenance.basic``).
    """
    started = time.time()
    deadline = time.monotonic() + timeout
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    except OSError as exc:
        outcome = failure("CommandNotFound" if isinstance(exc, FileNotFoundError)
                          else type(exc).__name__, f"cannot run {argv[0]!r}: {exc}")  # fmt: skip
        outcome.started = outcome.stop = started
        outcome.provenance = dict(basic())
        return outcome
    sink = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed below
    lock = threading.Lock()
    kept = _Tail(), _Tail()
    pipes = (process.stdout, process.stderr)
    pumps = [threading.Thread(target=_pump, args=(pipe, tail_, sink, lock), daemon=True,
                              name="workflow-command-output")
             for pipe, tail_ in zip(pipes, kept, strict=True)]  # fmt: skip
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for pump in pumps:  # a process it left behind may hold the pipes open
            pump.join(max(0.0, deadline - time.monotonic()))
        timed_out = any(pump.is_alive() for pump in pumps)
    except subprocess.TimeoutExpired:
        timed_out = True
    if timed_out:
        _kill(process)
    for pump in pumps:
        pump.join()
    if sink is not None:
        sink.close()
    stdout, stderr = (k.text() for k in kept)
    results = {"args": argv, "returncode": process.returncode,
               "stdout": tail(stdout), "stderr": tail(stderr)}  # fmt: skip
    if timed_out:
        outcome = failure("Timeout", f"the command exceeded its timeout of {timeout:g} s",
                          stderr)  # fmt: skip
        outcome.reason = "timeout"
    elif process.returncode != 0:
        outcome = failure("CommandFailed", f"{argv[0]} exited with code {process.returncode}",
                          stderr)  # fmt: skip
    else:
        outcome = Outcome(status="success")
    outcome.results = results
    outcome.started, outcome.stop = started, time.time()
    outcome.provenance = dict(basic())  # python, host, image, runner: no code of ours ran
    return outcome


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's process group (whatever it started goes with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
