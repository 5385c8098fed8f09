"""The MongoDB store's own guarantees: a move to the results that a crash interrupted is
finished on the next start, once; driver errors are 503s; it recovers by itself.

On mongomock (query semantics only); the conformance suite runs the shared contract,
against a real server too when ``WORKFLOW_TEST_MONGO_URL`` is set.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import httpx
import mongomock
import pytest
from harness import Server
from mongo_stores import mongo_store
from pymongo.errors import AutoReconnect

from workflow.buckets import Buckets
from workflow.errors import StoreUnavailable
from workflow.store.mongo import MongoStore
from workflow.wire import Outcome, Withdraw
from workflow.work import Work


def _store(client: Any) -> MongoStore:
    return MongoStore("mongodb://mongomock/repair", client=client)


def _running(store: MongoStore) -> dict[str, Any]:
    buckets = Buckets(store)
    buckets.deposit([Work(pipeline="p", retries=0).payload()])
    (doc,) = buckets.withdraw(Withdraw(pipelines=["p"]))
    return doc  # type: ignore[no-any-return]


@pytest.mark.parametrize("crash_after", ["marked", "copied"])
def test_an_interrupted_move_is_finished_on_the_next_start_exactly_once(crash_after: str) -> None:
    client = mongomock.MongoClient()
    store = _store(client)
    doc = _running(store)
    final = {**doc, "status": "success", "results": {"snr": 9}}
    # What a crash leaves: the bucket document marked as moving (and maybe the copy).
    store.db["work"].replace_one({"_id": doc["id"]}, {**store.work.stored(final), "_moving": True})
    if crash_after == "copied":
        store.db["results"].insert_one(store.results.stored(final))
    assert store.work.count({}) == 0, "a work being moved is no longer in the bucket"
    assert store.work.find({"status": "success"}) == []

    again = _store(client)  # the next start
    assert again.work.get(doc["id"]) is None
    assert again.results.get(doc["id"]) == final
    assert again.db["results"].count_documents({"_id": doc["id"]}) == 1
    assert again.results.find({}, text="9") == [final]
    assert Buckets(again).get(doc["id"])["status"] == "success"


def test_a_finish_is_a_compare_and_set() -> None:
    store = _store(mongomock.MongoClient())
    doc = _running(store)
    buckets = Buckets(store)
    buckets.complete(Outcome(id=doc["id"], attempt=1, status="success"))
    with pytest.raises(Exception, match="no work"):
        store.finish(doc["id"], {"status": "running", "attempt": 1}, doc)
    assert store.db["results"].count_documents({}) == 1


def test_a_driver_error_is_a_503_and_the_next_call_works(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(mongomock.MongoClient())
    calls = {"n": 0}
    original = store.db["work"].count_documents

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise AutoReconnect("connection reset")
        return original(*args, **kwargs)

    monkeypatch.setattr(store.work.raw, "count_documents", flaky)
    with pytest.raises(StoreUnavailable, match="MongoDB is unavailable \\(count\\)"):
        store.work.count({})
    assert store.work.count({}) == 0


def test_a_server_whose_database_is_down_answers_503_and_stays_up(make_server: Any) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server: Server = make_server(store=f"mongodb://127.0.0.1:{port}/down?serverSelectionTimeoutMS=300")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/version").status_code == 200
        for _ in range(2):
            reply = http.get("/buckets/counts")
            assert reply.status_code == 503
            assert reply.json()["error"] == "StoreUnavailable"
            assert reply.json()["message"].startswith("MongoDB is unavailable")
        assert http.post("/buckets/work", json=[{"pipeline": "p"}]).status_code == 503


@pytest.mark.skipif(not os.environ.get("WORKFLOW_TEST_MONGO_URL"),
                    reason="atomicity needs a real MongoDB (WORKFLOW_TEST_MONGO_URL)")
def test_concurrent_claims_on_a_real_server_never_share_a_work() -> None:
    stores = [mongo_store()]
    stores += [MongoStore(stores[0].url) for _ in range(3)]  # four servers, one database
    try:
        Buckets(stores[0]).deposit([Work(pipeline="race").payload() for _ in range(400)])
        taken: list[str] = []

        def claim(store: MongoStore) -> None:
            buckets = Buckets(store)
            while docs := buckets.withdraw(Withdraw(pipelines=["race"], limit=7)):
                taken.extend(doc["id"] for doc in docs)

        threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(taken) == 400 and len(set(taken)) == 400
    finally:
        stores[0].client.drop_database(stores[0].db.name)
        for store in stores:
            store.close()


def test_indexes_cover_the_withdraw_order_the_repair_sweep_and_every_results_filter() -> None:
    store = _store(mongomock.MongoClient())
    store.work.count({})  # first use builds them
    work = {name: spec["key"] for name, spec in store.db["work"].index_information().items()}
    assert work["withdraw_order"][:4] == [("status", 1), ("pipeline", 1), ("priority", -1),
                                          ("creation", 1)]  # fmt: skip
    assert work["moving"] == [("_moving", 1)] and work["lease_expiry"][1] == ("lease.expires", 1)
    results = set(store.db["results"].index_information())
    assert {f"by_{f}" for f in ("pipeline", "status", "tags", "event", "site", "user",
                                "_words")} <= results  # fmt: skip
