"""Held withdraws (``wait``): a request with nothing to claim is held and answered as
soon as a work it can claim arrives, on either way of serving the runners' calls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness import Server
from holding import PROMPT, held

from workflow.client import Client
from workflow.wire import Bulk, BulkFilter, Outcome, Withdraw
from workflow.work import Work


@pytest.fixture(scope="module", params=["fast", "plain"])
def waiting_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # fmt: skip
    """A server answering the runners' calls on the fast path, or through FastAPI."""
    root = tmp_path_factory.mktemp(f"waiting-{request.param}")
    server = Server(store=f"sqlite:///{root / 'store.db'}", log=root / "server.log",
                    env={"WORKFLOW_FAST_PATHS": "1" if request.param == "fast" else "0"})
    server.start()
    yield server
    server.stop()


def _answered_soon(future: Future[tuple[float, Any]], after: float) -> list[dict[str, Any]]:
    answered, works = future.result(timeout=15)
    assert answered - after < PROMPT, f"answered {answered - after:.2f} s after its work came"
    return works  # type: ignore[no-any-return]


def test_a_deposit_wakes_a_held_withdraw(waiting_server: Server, pipeline: str,
                                         pool: ThreadPoolExecutor) -> None:  # fmt: skip
    future = held(pool, waiting_server.url, Withdraw(pipelines=[pipeline], wait=20))
    with Client(waiting_server.url) as client:
        came = time.time()
        (id,) = client.deposit([Work(pipeline=pipeline)])
    (work,) = _answered_soon(future, came)
    assert (work["id"], work["status"], work["attempt"]) == (id, "running", 1)


def test_a_held_withdraw_with_nothing_coming_ends_empty_when_its_time_is_up(
        waiting_server: Server, pipeline: str) -> None:  # fmt: skip
    with Client(waiting_server.url) as client:
        began = time.monotonic()
        assert client.withdraw(Withdraw(pipelines=[pipeline], wait=1)) == []
        assert 0.9 <= time.monotonic() - began < 1 + PROMPT


def test_a_work_queued_again_wakes_a_held_withdraw(waiting_server: Server, pipeline: str,
                                                   pool: ThreadPoolExecutor) -> None:  # fmt: skip
    with Client(waiting_server.url) as client:
        client.deposit([Work(pipeline=pipeline, retries=1, backoff=0)])
        (first,) = client.withdraw(Withdraw(pipelines=[pipeline]))
        future = held(pool, waiting_server.url, Withdraw(pipelines=[pipeline], wait=20))
        came = time.time()
        client.complete(Outcome(id=first["id"], attempt=1, status="failure"))
    (again,) = _answered_soon(future, came)
    assert (again["id"], again["attempt"]) == (first["id"], 2)


def test_a_backoff_running_out_wakes_a_held_withdraw(waiting_server: Server, pipeline: str,
                                                     pool: ThreadPoolExecutor) -> None:  # fmt: skip
    with Client(waiting_server.url) as client:
        client.deposit([Work(pipeline=pipeline, retries=1, backoff=1.5)])
        (first,) = client.withdraw(Withdraw(pipelines=[pipeline]))
        client.complete(Outcome(id=first["id"], attempt=1, status="failure"))
        due = client.get(first["id"])["not_before"]
    future = held(pool, waiting_server.url, Withdraw(pipelines=[pipeline], wait=20))
    answered, (again,) = future.result(timeout=15)
    assert due <= answered < due + PROMPT, "not before its backoff ran out, and soon after"
    assert again["attempt"] == 2


def test_a_retry_a_resume_and_a_priority_change_each_wake_a_held_withdraw(
        waiting_server: Server, pipeline: str, pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url
    with Client(url) as client:
        # A retry of a finished work queues a new one.
        client.deposit([Work(pipeline=pipeline, retries=0)])
        (done,) = client.withdraw(Withdraw(pipelines=[pipeline]))
        client.complete(Outcome(id=done["id"], attempt=1, status="failure"))
        future = held(pool, url, Withdraw(pipelines=[pipeline], wait=20))
        came = time.time()
        copy = client.retry(done["id"])
        assert [w["id"] for w in _answered_soon(future, came)] == [copy["id"]]
        # A paused pipeline's work is handed out once the pipeline resumes.
        client.configure(pipeline, {"paused": True})
        (paused,) = client.deposit([Work(pipeline=pipeline)])
        future = held(pool, url, Withdraw(pipelines=[pipeline], wait=20))
        came = time.time()
        client.configure(pipeline, {"paused": False})
        assert [w["id"] for w in _answered_soon(future, came)] == [paused]
        # A withdraw for priority 5 only is answered when a queued work is raised to 5,
        # by one operator's change or by a bulk change.
        low, other = client.deposit([Work(pipeline=pipeline, priority=1),
                                     Work(pipeline=pipeline, priority=1)])  # fmt: skip
        future = held(pool, url, Withdraw(pipelines=[pipeline], priority=5, wait=20))
        came = time.time()
        client.change(low, priority=5)
        assert [w["id"] for w in _answered_soon(future, came)] == [low]
        future = held(pool, url, Withdraw(pipelines=[pipeline], priority=5, wait=20))
        came = time.time()
        bulk = Bulk(action="change", filter=BulkFilter(pipeline=[pipeline]), priority=5,
                    confirm=1)  # fmt: skip
        assert client.bulk(bulk).done == 1
        assert [w["id"] for w in _answered_soon(future, came)] == [other]


def test_held_withdraws_are_served_first_come_first_served(
        waiting_server: Server, pipeline: str, pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url
    futures = [held(pool, url, Withdraw(pipelines=[pipeline], runner=f"r{n}", wait=20))
               for n in range(3)]  # fmt: skip
    with Client(url) as client:
        for n in range(3):
            (id,) = client.deposit([Work(pipeline=pipeline, parameters={"n": n})])
            _, works = futures[n].result(timeout=15)
            assert [w["id"] for w in works] == [id], "the oldest held request first"
            time.sleep(0.2)
            assert not any(f.done() for f in futures[n + 1 :]), "one work, one request"


def test_an_exchange_with_outcomes_answers_at_once_and_one_without_waits(
        waiting_server: Server, pipeline: str, pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url
    want = Withdraw(pipelines=[pipeline], wait=20)
    with Client(url) as client:
        client.deposit([Work(pipeline=pipeline)])
        (first,) = client.withdraw(Withdraw(pipelines=[pipeline]))
        began = time.monotonic()
        outcome = Outcome(id=first["id"], attempt=1, status="success")
        completed, works = client.exchange([outcome], want)
        assert time.monotonic() - began < PROMPT, "its reply settles its outcomes: no wait"
        assert [c["ok"] for c in completed] == [True] and works == []
        assert client.get(first["id"])["status"] == "success"

        def exchange() -> tuple[float, Any]:
            with Client(url) as runner:
                return time.time(), runner.exchange([], want)

        future = pool.submit(exchange)
        time.sleep(0.3)
        assert not future.done(), "with nothing to report it waits"
        came = time.time()
        (id,) = client.deposit([Work(pipeline=pipeline)])
    answered, (completed, works) = future.result(timeout=15)
    assert answered - came < PROMPT
    assert completed == [] and [w["id"] for w in works] == [id]


def test_a_runner_ends_its_own_held_withdraw(waiting_server: Server, pipeline: str,
                                             pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url
    future = held(pool, url, Withdraw(pipelines=[pipeline], runner="leaving", wait=20))
    with Client(url) as client:
        came = time.time()
        assert client.call("POST", "/buckets/withdraw/end", json={"runner": "other"}) == {
            "ended": 0}
        assert client.call("POST", "/buckets/withdraw/end", json={"runner": "leaving"}) == {
            "ended": 1}
    assert _answered_soon(future, came) == []


def test_a_client_that_goes_away_while_held_takes_nothing(
        waiting_server: Server, pipeline: str) -> None:  # fmt: skip
    body = Withdraw(pipelines=[pipeline], wait=20).model_dump_json().encode()
    with socket.create_connection(("127.0.0.1", waiting_server.port)) as sock:
        sock.sendall(b"POST /buckets/withdraw HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.3)
    time.sleep(0.3)  # the server has seen the connection close
    with Client(waiting_server.url) as client:
        (id,) = client.deposit([Work(pipeline=pipeline)])
        time.sleep(0.5)
        assert client.get(id)["status"] == "queued", "claimed for a client that had left"


def _threads(pid: int) -> int:
    return int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text()
                    .splitlines() if line.startswith("Threads:")))  # fmt: skip


def test_held_requests_cost_no_thread_each_and_a_stopping_server_answers_them_at_once(
        make_server: Callable[..., Server], pool: ThreadPoolExecutor) -> None:  # fmt: skip
    server = make_server()
    assert server.process is not None
    with Client(server.url) as client:  # warm: the server's thread pool exists
        client.withdraw(Withdraw(pipelines=["warm"], wait=0.1))
    before = _threads(server.process.pid)
    many = ThreadPoolExecutor(max_workers=40)

    def hold(n: int) -> tuple[float, list[Any]]:
        with Client(server.url, retry_for=0) as client:
            works = client.withdraw(Withdraw(pipelines=["nothing"], runner=f"r{n}", wait=25))
        return time.time(), works

    futures = [many.submit(hold, n) for n in range(40)]
    time.sleep(1.5)
    assert not any(f.done() for f in futures)
    assert _threads(server.process.pid) <= before + 2, "a thread per held request"
    stopped = time.time()
    server.process.send_signal(signal.SIGTERM)
    for future in futures:
        answered, works = future.result(timeout=10)
        assert works == [] and answered - stopped < 5, "answered as the server stopped"
    server.process.wait(timeout=10)  # uvicorn ends by re-raising the signal it caught
    assert server.log is not None and "Application shutdown complete" in server.log.read_text()
    many.shutdown()


def test_the_server_holds_no_longer_than_its_max_wait(make_server: Callable[..., Server]
                                                      ) -> None:  # fmt: skip
    server = make_server(env={"WORKFLOW_MAX_WAIT": "0.5"})
    with Client(server.url) as client:
        began = time.monotonic()
        assert client.withdraw(Withdraw(pipelines=["short"], wait=20)) == []
        assert 0.4 <= time.monotonic() - began < 0.5 + PROMPT


def test_a_max_wait_out_of_range_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "workflow", "serve", "--port", "1", "--store",
                           f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True,
                          env={**os.environ, "WORKFLOW_MAX_WAIT": "31"})  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: WORKFLOW_MAX_WAIT must be between 0 and 30 seconds (max_wait)"]


def test_a_read_that_waits_is_answered_as_its_work_finishes(
        waiting_server: Server, pipeline: str, pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url
    with Client(url) as client:
        (id,) = client.deposit([Work(pipeline=pipeline)])
        began = time.monotonic()
        assert client.get(id, wait=0.5)["status"] == "queued", "as it is when time is up"
        assert time.monotonic() - began >= 0.45
        read = pool.submit(lambda: (Client(url).wait([id], timeout=20), time.time()))
        (taken,) = client.withdraw(Withdraw(pipelines=[pipeline]))
        time.sleep(0.3)
        assert not read.done(), "answered before the work finished"
        came = time.time()
        client.complete(Outcome(id=id, attempt=taken["attempt"], status="success",
                                results={"n": 1}))  # fmt: skip
    (done,), answered = read.result(timeout=15)
    assert answered - came < PROMPT
    assert (done["status"], done["results"]) == ("success", {"n": 1})


def test_work_wait_and_deposit_wait_give_the_outcome(waiting_server: Server, pipeline: str,
                                                     pool: ThreadPoolExecutor) -> None:  # fmt: skip
    url = waiting_server.url

    def finish(status: str, **fields: Any) -> None:
        with Client(url) as client:
            deadline = time.monotonic() + 10
            while not (taken := client.withdraw(Withdraw(pipelines=[pipeline]))):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            client.complete(Outcome(id=taken[0]["id"], attempt=1, status=status, **fields))

    work = Work(pipeline=pipeline, retries=0)
    with Client(url) as client:
        work.deposit(client)
        pool.submit(finish, "success", results={"answer": 42})
        done = work.wait(timeout=20, client=client)
    assert (done.status, done.results) == ("success", {"answer": 42})

    env = {**os.environ, "WORKFLOW_URL": url}
    command = [sys.executable, "-m", "workflow", "deposit", "-p", pipeline, "--retries", "0",
               "--function", "builtins.dict", "--wait", "20"]  # fmt: skip
    pool.submit(finish, "failure", error={"type": "ValueError", "message": "bad scan"})
    failed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 1, failed.stderr
    (line,) = failed.stdout.strip().splitlines()
    assert line.endswith("  failure  ValueError: bad scan")
    pool.submit(finish, "success", results={"n": 3})
    succeeded = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert succeeded.returncode == 0, succeeded.stderr
    assert succeeded.stdout.strip().endswith('  success  {"n": 3}')
