"""The demo: a server on SQLite, demo work deposited, worked off, and the results shown.

The demo pipeline searches simulated radio-telescope events for a dispersed pulse; a
``workflow run`` process works the bucket off, as a runner would in production.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workflow.client import Client
from workflow.errors import ServerUnreachable
from workflow.work import Work

PIPELINE = "demo-search"


def dedisperse(event: int, dm: float, width_ms: float) -> dict[str, Any]:
    """Demo task: the signal-to-noise of a simulated pulse at dispersion measure ``dm``."""
    rng = random.Random(event)
    noise = rng.gauss(0, 1)
    snr = 4 + 30 * math.exp(-((dm - 350) ** 2) / 2e4) / math.sqrt(width_ms) + noise
    if snr < 0:
        raise ValueError(f"event {event}: negative signal-to-noise {snr:.2f}")
    return {"snr": round(snr, 2), "dm": dm, "detected": snr > 8}


def demo_works(count: int = 12) -> list[Work]:
    """Demo works: one per simulated event, some urgent, one that fails."""
    works = []
    for event in range(count):
        dm = 100 + 50 * event
        works.append(Work(
            pipeline=PIPELINE, function="workflow.demo.dedisperse",
            parameters={"event": event, "dm": dm, "width_ms": 0 if event == 5 else 1 + event % 3},
            event=[9_000_000 + event], tags=["demo", "urgent" if event % 4 == 0 else "routine"],
            priority=5 if event % 4 == 0 else 3, retries=1, backoff=0,
        ))  # fmt: skip
    return works


def prepare(fresh: bool) -> Path:
    """The demo's folder, ``$XDG_DATA_HOME/workflow`` (beside the default store, which the
    demo never touches); with ``fresh``, its store (``demo.db``) and its runner's spool
    are emptied, so each demo starts from nothing."""
    from workflow.store.sqlite import default_path  # not in the runner's children

    place = default_path().parent
    place.mkdir(parents=True, exist_ok=True)
    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (place / f"demo.db{suffix}").unlink(missing_ok=True)
        shutil.rmtree(place / "demo-spool", ignore_errors=True)
    return place


def run_runner(url: str, spool: Path) -> int:
    """Run ``workflow run`` on the demo pipeline until the bucket is empty; its exit code.
    Interrupted (Ctrl-C, SIGTERM), it stops the runner before it returns."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "workflow", "run", PIPELINE, "--burst", "--concurrency", "2",
         "--prefetch", "4", "--url", url, "--spool", str(spool)],
    )  # fmt: skip
    try:
        return runner.wait()
    finally:
        stop(runner)


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM ``process`` unless it has ended, SIGKILL after ``grace`` seconds; wait."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(client: Client, seconds: float = 20.0) -> None:
    """Wait until the server answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.call("GET", "/version")
            return
        except ServerUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_server(port: int, store: str, log: Path) -> subprocess.Popen[bytes]:
    """``workflow serve`` as a child process, its log in ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workflow", "serve", "--port", str(port), "--store", store],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
