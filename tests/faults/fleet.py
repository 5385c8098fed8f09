"""Helpers of the fault tests: runner processes, waiting, and the check that follows
every fault (each acknowledged deposit and result present exactly once, nothing left
running past its lease)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TASKS = '''
import time

def quick(i):
    return {"i": i}

def slow(seconds, i=0):
    time.sleep(seconds)
    return {"slept": seconds, "i": i}
'''
VIEW_ALL = {"query": {}, "projection": {}, "skip": 0, "limit": 0}


def write_tasks(folder: Path) -> Path:
    """A folder holding the ``faulttasks`` module; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faulttasks.py").write_text(textwrap.dedent(TASKS))
    return folder


@contextmanager
def runners(url: str, tasks: Path, spool_root: Path, *args: str, count: int = 1,
            env: dict[str, str] | None = None
            ) -> Iterator[list[subprocess.Popen[bytes]]]:  # fmt: skip
    """``count`` ``workflow run *args`` processes, each its own process group and spool;
    stopped with SIGTERM (then SIGKILL) when the block ends."""
    started = [start_runner(url, tasks, spool_root / f"spool-{n}", *args, env=env)
               for n in range(count)]  # fmt: skip
    try:
        yield started
    finally:
        for process in started:
            stop(process)


def start_runner(url: str, tasks: Path, spool: Path, *args: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    spool.mkdir(parents=True, exist_ok=True)
    log = open(spool.parent / f"{spool.name}.log", "ab")  # noqa: SIM115 - the child keeps it
    environment = {**os.environ, "WORKFLOW_URL": url, "PYTHONPATH": str(tasks),
                   "WORKFLOW_SPOOL": str(spool), **(env or {})}  # fmt: skip
    try:
        return subprocess.Popen([sys.executable, "-m", "workflow", "run", *args],
                                env=environment, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    finally:
        log.close()


def stop(process: subprocess.Popen[bytes], seconds: float = 30) -> int | None:
    """SIGTERM, then SIGKILL of the whole group if it does not end in ``seconds``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            kill_group(process)
    return process.returncode


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started (a runner and its work process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def wait_for(check: Callable[[], Any], seconds: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met within {seconds} s")


def everything(url: str, headers: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every work of the bucket and of the results."""
    with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
        bucket = http.post("/buckets/view", json=VIEW_ALL)
        results = http.post("/results/view", json=VIEW_ALL)
    bucket.raise_for_status()
    results.raise_for_status()
    return {"bucket": bucket.json(), "results": results.json()}


def assert_exactly_once(url: str, acknowledged: set[str], finished: set[str] | None = None,
                        sent: set[str] | None = None, now: float | None = None
                        ) -> dict[str, Any]:  # fmt: skip
    """The check after every fault.

    Every acknowledged deposit is stored exactly once (in the bucket or the results);
    every acknowledged result (``finished``) is in the results exactly once; nothing
    is stored that was not ``sent``; no work is ``running`` past its lease; each result
    ends with the outcome of its last attempt.
    """
    stored = everything(url)
    ids = [doc["id"] for doc in stored["bucket"] + stored["results"]]
    assert len(ids) == len(set(ids)), "a work is stored twice"
    assert acknowledged <= set(ids), f"acknowledged deposits lost: {acknowledged - set(ids)}"
    if sent is not None:
        assert set(ids) <= sent, "a work appeared that was never sent"
    results = {doc["id"]: doc for doc in stored["results"]}
    if finished is not None:
        assert finished <= set(results), f"acknowledged results lost: {finished - set(results)}"
    now = time.time() if now is None else now
    for doc in stored["bucket"]:
        if doc["status"] == "running":
            assert doc["lease"]["expires"] > now - 5, f"{doc['id']} is running past its lease"
    for doc in results.values():
        attempts = [e for e in doc["history"] if "attempt" in e and "outcome" in e]
        if doc["status"] == "success":
            assert attempts and attempts[-1]["outcome"] == "success", doc["history"]
            assert attempts[-1]["attempt"] == doc["attempt"]
            assert sum(e["outcome"] == "success" for e in attempts) == 1, "recorded twice"
    return stored
