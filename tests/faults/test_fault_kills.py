"""Fault tier: processes killed with SIGKILL at the worst moments, against real servers
and runners. After each, every acknowledged deposit and every acknowledged result is
stored exactly once and no work is left running past its lease."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fleet import assert_exactly_once, kill_group, runners, start_runner, wait_for, write_tasks
from harness import Server

pytestmark = pytest.mark.slow


def test_server_killed_three_times_under_mixed_load(make_server: Callable[..., Server],
                                                    tmp_path: Path) -> None:  # fmt: skip
    """Depositors, two prefetching runners and a searcher keep going while the server is
    killed three times and started again on the same file."""
    server = make_server()
    tasks = write_tasks(tmp_path / "tasks")
    sent: set[str] = set()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    searches = [0]

    def deposit(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            i = 0
            while not stop.is_set():
                batch = [{"id": f"m{n}-{uuid.uuid4().hex[:12]}", "pipeline": "mixed",
                          "function": "faulttasks.quick", "parameters": {"i": i + k},
                          "retries": 3, "backoff": 0} for k in range(1 + i % 5)]  # fmt: skip
                i += len(batch)
                with lock:
                    sent.update(w["id"] for w in batch)
                try:
                    reply = http.post("/buckets/work", params={"return_ids": "true"}, json=batch)
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if reply.status_code == 200:
                    with lock:
                        acknowledged.update(reply.json())
                time.sleep(0.005)

    def search() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            while not stop.is_set():
                try:
                    if http.get("/results/works", params={"pipeline": "mixed"}).status_code == 200:
                        searches[0] += 1
                except httpx.TransportError:
                    time.sleep(0.05)

    threads = [threading.Thread(target=deposit, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=search))
    with runners(server.url, tasks, tmp_path, "mixed", "--prefetch", "20", "--lease", "5",
                 "--sleep", "0.05", "--max-sleep", "0.2", count=2) as fleet:  # fmt: skip
        for thread in threads:
            thread.start()
        try:
            for _ in range(3):
                target = len(acknowledged) + 150
                wait_for(lambda t=target: len(acknowledged) >= t, what="deposits")
                server.kill()
                time.sleep(0.3)
                server.start()
        finally:
            stop.set()
            for thread in threads:
                thread.join()

        def all_finished() -> bool:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                counts = http.get("/buckets/counts").json()
            mixed = counts.get("mixed", {})
            return mixed.get("success", 0) >= len(acknowledged) and not (
                mixed.get("queued", 0) or mixed.get("running", 0))

        wait_for(all_finished, seconds=120, what="every deposit finished")
        for process in fleet:
            process.terminate()
        assert [process.wait(60) for process in fleet] == [0, 0], "runners exit cleanly"
    stored = assert_exactly_once(server.url, acknowledged, sent=sent)
    assert {doc["id"] for doc in stored["results"]} >= acknowledged
    assert all(doc["status"] == "success" for doc in stored["results"])
    assert len(acknowledged) > 450 and searches[0] > 10


def test_runner_killed_mid_work_is_taken_over(make_server: Callable[..., Server],
                                              tmp_path: Path) -> None:  # fmt: skip
    server = make_server()
    tasks = write_tasks(tmp_path / "tasks")
    ids = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, timeout=10,
                     json=[{"pipeline": "midwork", "function": "faulttasks.slow", "retries": 2,
                            "backoff": 0, "parameters": {"seconds": 1.5, "i": i}}
                           for i in range(4)]).json()  # fmt: skip
    doomed = start_runner(server.url, tasks, tmp_path / "doomed", "midwork", "--lease", "1",
                          "--prefetch", "4")  # fmt: skip
    wait_for(lambda: httpx.get(f"{server.url}/buckets/counts", timeout=5).json()
             .get("midwork", {}).get("running", 0) == 4, what="all four claimed")  # fmt: skip
    time.sleep(0.5)  # the first is half done
    kill_group(doomed)  # the runner and its work process, at once
    wait_for(lambda: httpx.get(f"{server.url}/buckets/counts", timeout=5).json()
             .get("midwork", {}).get("queued", 0) == 4, what="requeued")  # fmt: skip
    with runners(server.url, tasks, tmp_path, "midwork", "--burst", "--lease", "5",
                 "--prefetch", "4") as (heir,):  # fmt: skip
        assert heir.wait(60) == 0
    stored = assert_exactly_once(server.url, set(ids), finished=set(ids))
    for doc in stored["results"]:
        outcomes = [(e["attempt"], e["outcome"]) for e in doc["history"]]
        assert outcomes == [(1, "lost"), (2, "success")], outcomes
        assert doc["history"][0]["reason"] == "lease-expired"


def test_runner_killed_between_finishing_and_reporting(make_server: Callable[..., Server],
                                                       tmp_path: Path) -> None:  # fmt: skip
    """The outcome is journaled but not yet delivered when the runner dies: the next
    runner on the same spool delivers it, once."""
    server = make_server()
    tasks = write_tasks(tmp_path / "tasks")
    (id,) = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, timeout=10,
                       json=[{"pipeline": "report", "function": "faulttasks.slow",
                              "parameters": {"seconds": 1.0}}]).json()  # fmt: skip
    spool = tmp_path / "shared-spool"
    doomed = start_runner(server.url, tasks, spool, "report", "--lease", "120")
    wait_for(lambda: httpx.get(f"{server.url}/buckets/work/{id}", timeout=5).json()["status"]
             == "running", what="claimed")  # fmt: skip
    server.kill()  # down while the work finishes: its outcome cannot be delivered
    wait_for(lambda: any(id in p.read_text() for p in spool.glob("*.journal")),
             seconds=30, what="outcome journaled")  # fmt: skip
    kill_group(doomed)
    server.start()
    work = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
    assert work["status"] == "running", "the server never heard of the outcome"
    heir = start_runner(server.url, tasks, spool, "report", "--burst")
    assert heir.wait(60) == 0
    stored = assert_exactly_once(server.url, {id}, finished={id})
    (done,) = stored["results"]
    assert [(e["attempt"], e["outcome"]) for e in done["history"]] == [(1, "success")]
    assert done["results"] == {"slept": 1.0, "i": 0}
    assert not any(p.read_text().strip() for p in spool.glob("*.journal")), "spool emptied"


def test_server_killed_while_runners_wait_at_it(make_server: Callable[..., Server],
                                                tmp_path: Path) -> None:  # fmt: skip
    """Idle runners hold withdraws at the server when it is killed: they wait for it to
    come back, then pick up what is deposited, each work once."""
    server = make_server()
    tasks = write_tasks(tmp_path / "tasks")
    with runners(server.url, tasks, tmp_path, "held", "faulttasks.quick", count=2) as fleet:
        time.sleep(2)  # both idle, their withdraws held
        server.kill()
        time.sleep(1)
        server.start()
        ids = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                         timeout=10, json=[{"pipeline": "held", "retries": 0,
                                            "parameters": {"i": i}} for i in range(6)]).json()
        wait_for(lambda: httpx.get(f"{server.url}/buckets/counts", timeout=5).json()
                 .get("held", {}).get("success", 0) == 6, seconds=30, what="all six done")
        assert all(process.poll() is None for process in fleet), "the runners carried on"
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10, "held withdraws hold up no runner's stop"
    stored = assert_exactly_once(server.url, set(ids), finished=set(ids))
    assert all([e["outcome"] for e in doc["history"]] == ["success"]
               for doc in stored["results"])  # fmt: skip
