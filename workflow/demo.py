"""The demo: a server on SQLite, demo work deposited, worked off, and the results shown.

The demo pipeline searches simulated radio-telescope events for a dispersed pulse.
Until ``workflow run`` exists, the demo works the bucket off with the plain client
calls a runner makes: withdraw a batch, run each function, report each outcome.
"""

from __future__ import annotations

import importlib
import math
import random
import socket
import subprocess
import sys
import time
import traceback
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


def work_off(client: Client, runner: str = "demo-worker") -> int:
    """Run every queued demo work in this process; return how many attempts ran."""
    attempts = 0
    while batch := client.withdraw(PIPELINE, limit=10, runner=runner, host=socket.gethostname()):
        for work in batch:
            assert work.id is not None
            attempts += 1
            started = time.time()
            try:
                module, _, name = (work.function or "").rpartition(".")
                outcome = getattr(importlib.import_module(module), name)(**(work.parameters or {}))
            except Exception as exc:
                error = {"type": type(exc).__name__, "message": str(exc),
                         "traceback": traceback.format_exc()[-4000:]}  # fmt: skip
                client.complete(work.id, work.attempt, "failure", error=error, started=started)
            else:
                client.complete(work.id, work.attempt, "success", results=outcome,
                                started=started)  # fmt: skip
    return attempts


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
