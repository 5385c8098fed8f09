"""Held requests on a store other servers share (MongoDB): woken through the store's
change stream, or, without one, by looking every 100 ms."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from harness import Server
from holding import PROMPT, held

from workflow.client import Client
from workflow.wire import Outcome, Withdraw
from workflow.work import Work


def test_on_a_shared_store_a_deposit_through_another_server_wakes_a_held_withdraw() -> None:
    """MongoDB: a deposit on one server cannot call the others; each looks every 100 ms
    while it holds requests (on mongomock here, or on WORKFLOW_TEST_MONGO_URL)."""
    from mongo_stores import mongo_store

    from workflow.buckets import Buckets
    from workflow.service.waiting import POLL, WaitingRoom

    store = mongo_store()
    assert store.shared
    here, elsewhere = Buckets(store), Buckets(store)  # two servers on one database

    async def scenario() -> tuple[float, list[dict[str, Any]]]:
        room = WaitingRoom(lambda want, by: here.withdraw(want, by=by), lambda works: None,
                           poll=store.shared)  # fmt: skip
        room.start()
        here.changed = room.changed  # only this server's own changes reach the room
        held = room.enter(Withdraw(pipelines=["shared"], wait=10), None)
        assert held is not None
        await asyncio.sleep(0.3)
        assert not held.answer.done()
        came = time.time()
        await asyncio.to_thread(elsewhere.deposit, [Work(pipeline="shared")])
        works = await held.answer
        room.leave(held)
        room.close()
        return time.time() - came, works

    # On a thread of its own: the browser tests' session keeps an event loop on this one.
    with ThreadPoolExecutor(max_workers=1) as own:
        took, works = own.submit(asyncio.run, scenario()).result(timeout=30)
    assert len(works) == 1 and took < POLL + PROMPT
    store.close()


class Followed:
    """A change stream the test drives, for a store on mongomock (which has none): it
    keeps the server's callbacks."""

    def __init__(self) -> None:
        self.told: tuple[Any, Any, Any] | None = None
        self.stopped = False

    def follow(self, on_claimable: Any, on_finished: Any, on_lost: Any) -> Followed:
        self.told = (on_claimable, on_finished, on_lost)
        return self

    def stop(self) -> None:
        self.stopped = True


def _on_mongomock(scenario: Callable[..., Any], stream: Followed | None = None) -> Any:
    """``scenario(http, elsewhere)`` against a server on a fresh mongomock database,
    ``elsewhere`` being another server's verbs on it (they cannot tell this server);
    with ``stream``, the store follows it."""
    import mongomock

    from workflow.buckets import Buckets
    from workflow.service.app import create_app
    from workflow.settings import ServerSettings
    from workflow.store.mongo import MongoStore

    store = MongoStore(f"mongodb://mongomock/{uuid.uuid4().hex[:12]}",
                       client=mongomock.MongoClient())  # fmt: skip
    if stream is not None:
        store.follow = stream.follow  # type: ignore[method-assign]
    app = create_app(ServerSettings(), store)

    async def run() -> Any:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://workflow") as http:
            return await scenario(http, Buckets(store))

    # On a thread of its own: the browser tests' session keeps an event loop on this one.
    with ThreadPoolExecutor(max_workers=1) as own:
        return own.submit(asyncio.run, run()).result(timeout=30)


async def _hold(http: httpx.AsyncClient, pipeline: str) -> asyncio.Future[httpx.Response]:
    """A withdraw held by the server under test."""
    want = Withdraw(pipelines=[pipeline], wait=10).model_dump(mode="json")
    held = asyncio.ensure_future(http.post("/buckets/withdraw", json=want))
    await asyncio.sleep(0.3)
    assert not held.done(), "answered at once, not held"
    return held


async def _deposited_elsewhere(elsewhere: Any, pipeline: str) -> float:
    """When another server deposited a work of ``pipeline``."""
    came = time.time()
    await asyncio.to_thread(elsewhere.deposit, [Work(pipeline=pipeline).payload()])
    return came


def test_without_change_streams_a_server_says_so_and_a_deposit_elsewhere_still_wakes_it(
        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """mongomock, like a standalone mongod, has no change streams: the server says so at
    start-up and in ``/version``, and looks every 100 ms while it holds a withdraw, so a
    deposit another server writes straight into the database still reaches it."""
    caplog.set_level(logging.INFO, logger="workflow.serve")

    async def scenario(http: httpx.AsyncClient, elsewhere: Any) -> Any:
        wake = (await http.get("/version")).json()["wake"]
        held = await _hold(http, "shared")
        came = await _deposited_elsewhere(elsewhere, "shared")
        works = (await held).json()
        return wake, time.time() - came, works

    wake, took, works = _on_mongomock(scenario)
    assert wake == "poll"
    assert [w["pipeline"] for w in works] == ["shared"] and took < 0.5, f"{took:.2f} s"
    assert caplog.messages.count("MongoDB without change streams (not a replica set): held "
                                 "requests look every 100 ms") == 1  # fmt: skip


def test_with_a_change_stream_the_server_waits_for_it_and_looks_itself_once_it_is_lost(
        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Following a stream, the server does not look by itself: a deposit elsewhere wakes
    a held withdraw when the stream tells of it. Once the stream is lost, the server
    looks every 100 ms, and says so."""
    caplog.set_level(logging.INFO, logger="workflow.serve")
    stream = Followed()

    async def scenario(http: httpx.AsyncClient, elsewhere: Any) -> Any:
        assert stream.told is not None
        on_claimable, _, on_lost = stream.told
        wakes = [(await http.get("/version")).json()["wake"]]
        held = await _hold(http, "streamed")
        await _deposited_elsewhere(elsewhere, "streamed")
        await asyncio.sleep(0.5)
        assert not held.done(), "looked by itself while following a stream"
        told = time.time()
        await asyncio.to_thread(on_claimable, None)  # as the stream's thread tells it
        works, took = (await held).json(), [time.time() - told]
        await asyncio.to_thread(on_lost)
        wakes.append((await http.get("/version")).json()["wake"])
        held = await _hold(http, "streamed")
        came = await _deposited_elsewhere(elsewhere, "streamed")
        works += (await held).json()
        return wakes, [*took, time.time() - came], works

    wakes, took, works = _on_mongomock(scenario, stream)
    assert wakes == ["change-stream", "poll"] and stream.stopped
    assert len(works) == 2 and max(took) < 0.5, took
    assert "MongoDB change stream: held requests wake on other servers' changes" in \
        caplog.messages  # fmt: skip
    assert "MongoDB change stream lost: held requests look every 100 ms" in caplog.messages


@pytest.mark.skipif(not os.environ.get("WORKFLOW_TEST_MONGO_URL"),
                    reason="change streams need a real replica set (WORKFLOW_TEST_MONGO_URL)")
def test_on_a_replica_set_servers_wake_each_other_within_50_ms(
        make_server: Callable[..., Server], pipeline: str,
        pool: ThreadPoolExecutor) -> None:  # fmt: skip
    """Two servers on one database: a deposit on one answers a withdraw held by the other,
    and a finish on one a read waiting at the other, through the change stream."""
    from mongo_stores import mongo_store

    store = mongo_store()  # a fresh database on the real server
    here, there = make_server(store=store.url), make_server(store=store.url)
    try:
        for server in (here, there):
            assert httpx.get(f"{server.url}/version").json()["wake"] == "change-stream"
            assert server.log is not None and ("MongoDB change stream: held requests wake on "
                                               "other servers' changes") in server.log.read_text()
        with Client(here.url) as client:
            for _ in range(3):
                future = held(pool, there.url, Withdraw(pipelines=[pipeline], wait=20))
                came = time.time()
                (id,) = client.deposit([Work(pipeline=pipeline)])
                answered, (work,) = future.result(timeout=15)
                assert work["id"] == id and answered - came < 0.05, f"{answered - came:.3f} s"
            read = pool.submit(lambda: (Client(there.url).wait([id], timeout=20), time.time()))
            time.sleep(0.3)
            came = time.time()
            client.complete(Outcome(id=id, attempt=1, status="success"))
        (done,), answered = read.result(timeout=15)
        assert done["status"] == "success" and answered - came < 0.05, f"{answered - came:.3f} s"
    finally:
        here.stop()
        there.stop()
        store.client.drop_database(store.db.name)
        store.close()
