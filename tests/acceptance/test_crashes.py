"""Crashes: runners that vanish, and a server killed with SIGKILL mid-stream."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import Server

pytestmark = pytest.mark.slow

#: A runner that claims one work and then hangs until it is killed.
VANISHING_RUNNER = """
import sys, time
import httpx
url, pipeline, how = sys.argv[1], sys.argv[2], sys.argv[3]
if how == "chime":  # CHIME's runner: no lease asked for, never a heartbeat
    work = httpx.post(f"{url}/buckets/work/withdraw", json={"pipeline": {"$in": [pipeline]}}).json()
else:
    work = httpx.post(f"{url}/buckets/withdraw",
                      json={"pipelines": [pipeline], "lease": 0.5, "runner": "doomed"}).json()[0]
print(work["id"], work["attempt"], flush=True)
time.sleep(3600)
"""


def _claim_and_vanish(server: Server, pipeline: str, how: str) -> tuple[str, int]:
    runner = subprocess.Popen([sys.executable, "-c", VANISHING_RUNNER, server.url, pipeline, how],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert runner.stdout is not None
    id, attempt = runner.stdout.readline().split()
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    runner.stdout.close()
    return id, int(attempt)


def _wait_for(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize(("how", "reason", "timeout"), [("lease", "lease-expired", 3600),
                                                        ("chime", "timeout", 1)])
def test_vanished_runner_is_requeued_then_fails_after_all_attempts(
    server: Server, how: str, reason: str, timeout: int
) -> None:
    pipeline = f"vanish-{how}"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": "true"}, json=[
            {"pipeline": pipeline, "retries": 1, "backoff": 0, "timeout": timeout}]).json()

        def get() -> dict[str, Any]:
            return http.get(f"/buckets/work/{id}").json()  # type: ignore[no-any-return]

        assert _claim_and_vanish(server, pipeline, how) == (id, 1)
        # No one calls the audit: the server notices the lost lease by itself.
        requeued = _wait_for(lambda: (w := get())["status"] == "queued" and w)
        assert requeued["attempt"] == 1
        (lost,) = requeued["history"]
        assert (lost["attempt"], lost["outcome"], lost["reason"]) == (1, "lost", reason)

        assert _claim_and_vanish(server, pipeline, how) == (id, 2)
        final = _wait_for(lambda: (w := get())["status"] == "failure" and w)
        assert [e["outcome"] for e in final["history"]] == ["lost", "lost"]
        assert http.get(f"/results/works/{id}").json()["status"] == "failure"
        assert http.post("/buckets/view", json={"query": {"id": id}}).json() == []


def test_acknowledged_deposits_survive_kill_9_exactly_once(make_server: Callable[..., Server]
                                                           ) -> None:  # fmt: skip
    server = make_server()
    acknowledged: list[str] = []
    sent: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def deposit_stream(n: int) -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                batch = [{"id": f"k{n}-{uuid.uuid4().hex}", "pipeline": "crash",
                          "parameters": {"n": n}} for _ in range(1 + len(sent) % 4)]  # fmt: skip
                with lock:
                    sent.extend(w["id"] for w in batch)
                try:
                    reply = http.post(f"{server.url}/buckets/work",
                                      params={"return_ids": "true"}, json=batch)  # fmt: skip
                except httpx.TransportError:
                    time.sleep(0.02)  # server down: keep trying until told to stop
                    continue
                if reply.status_code == 200:
                    with lock:
                        acknowledged.extend(reply.json())

    threads = [threading.Thread(target=deposit_stream, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):  # three crashes in the middle of the stream
            target = len(acknowledged) + 50
            _wait_for(lambda target=target: len(acknowledged) >= target, seconds=30)
            server.kill()
            time.sleep(0.2)
            server.start()
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    with httpx.Client(base_url=server.url, timeout=30) as http:
        stored = http.post("/buckets/view", json={"query": {}, "projection": {"id": 1},
                                                  "limit": 0}).json()  # fmt: skip
    stored_ids = [doc["id"] for doc in stored]
    assert len(stored_ids) == len(set(stored_ids)), "nothing is stored twice"
    assert set(acknowledged) <= set(stored_ids), "every acknowledged deposit is there"
    assert set(stored_ids) <= set(sent), "nothing appears that was not sent"
    assert len(acknowledged) > 150
