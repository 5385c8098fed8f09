"""Processes for the benchmarks: a ``workflow serve`` subprocess, CPU time of process trees.

Shared by every benchmark script (run from the
project root; Python puts ``benchmarks/`` first on ``sys.path`` for them).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from workflow.demo import stop

BENCHMARKS = Path(__file__).resolve().parent
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workdir(stack: ExitStack, keep: Path | None, prefix: str) -> Path:
    """``keep`` (created if needed), or a temporary directory removed with ``stack``."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return keep
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))


def add_mode_options(parser: argparse.ArgumentParser, in_process: str, keep: str) -> None:
    """``--http/--no-http``, ``--in-process/--no-in-process`` and ``--keep DIR``."""
    parser.add_argument("--http", action=argparse.BooleanOptionalAction, default=True,
                        help="measure over HTTP against workflow serve (default: yes)")
    parser.add_argument("--in-process", action=argparse.BooleanOptionalAction, default=True,
                        help=f"measure {in_process} in this process (default: yes)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help=f"write {keep} here and keep them")


def machine() -> dict[str, Any]:
    """What the figures were measured on, and which commit of the code (``+`` if the
    work tree of ``workflow/`` had changes)."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run([*git, "status", "--porcelain", "workflow"], capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
            "commit": commit + ("+" if dirty else "")}  # fmt: skip


def note(message: str) -> None:
    """Progress, on stderr so that stdout holds only the tables and the JSON line."""
    print(message, file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ``WORKFLOW_*`` variable, ``benchmarks/`` on the path.

    No token, store or pipeline of the caller's shell reaches a server or a runner, and
    runners can import ``noop_tasks``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCHMARKS), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


@contextmanager
def serve(url: str, log: Path, timeout: float = 30.0, extra: tuple[str, ...] = ()
          ) -> Iterator[tuple[str, subprocess.Popen]]:  # fmt: skip
    """Run ``workflow serve`` on store ``url`` (with ``extra`` options) for the ``with``
    block, on a free port.

    Yields:
        The base URL and the server process (for its pid).
    """
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workflow", "serve", "--port", str(port), "--store", url,
             *extra],
            env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"workflow serve exited with {process.returncode}; "
                                       f"see {log}")  # fmt: skip
                try:
                    if httpx.get(f"{base}/version", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workflow serve did not answer in time; see {log}")
                time.sleep(0.05)
            yield base, process
        finally:
            stop(process)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds of process trees (each root and all its descendants), Linux only.

    A process's time is known only while it lives, so ``sample`` keeps the largest value
    seen per pid; call it now and then, and once more just before the processes exit.
    """

    def __init__(self) -> None:
        self.roots: dict[int, str] = {}  # root pid -> name of its tree
        self.seen: dict[int, tuple[int, float]] = {}  # pid -> (its root pid, CPU seconds)
        self.base: dict[str, float] = {}

    def add(self, pid: int, name: str) -> None:
        """Count ``pid`` and its descendants as ``name`` (several roots may share one)."""
        self.roots[pid] = name

    def sample(self) -> None:
        """Read the CPU time of every live process in the trees."""
        stats: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := _stat(int(entry))) is not None:
                stats[int(entry)] = stat
        root = {pid: pid for pid in self.roots}
        changed = True
        while changed:  # walk down the trees until no new descendant turns up
            changed = False
            for pid, (ppid, _) in stats.items():
                if pid not in root and ppid in root:
                    root[pid] = root[ppid]
                    changed = True
        for pid, top in root.items():
            if pid in stats:
                old = self.seen.get(pid, (top, 0.0))[1]
                self.seen[pid] = (top, max(old, stats[pid][1]))

    def tree(self, pid: int) -> list[int]:
        """The root ``pid`` and its descendants seen so far."""
        return [p for p, (top, _) in self.seen.items() if top == pid]

    def start(self) -> None:
        """Count from now on: what the trees known now used so far is subtracted."""
        self.sample()
        self.base = self.totals(since_start=False)

    def totals(self, since_start: bool = True) -> dict[str, float]:
        """CPU seconds per tree name, and per ``"NAME children"`` (descendants only)."""
        out: dict[str, float] = {}
        for name in self.roots.values():
            out[name] = out[f"{name} children"] = 0.0
        for pid, (top, seconds) in self.seen.items():
            out[self.roots[top]] += seconds
            if pid != top:
                out[f"{self.roots[top]} children"] += seconds
        if since_start:
            out = {name: seconds - self.base.get(name, 0.0) for name, seconds in out.items()}
        return out
