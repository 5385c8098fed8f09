"""The MongoDB store under concurrent calls: every session and transaction belongs to the
call that opened it, and no write of one call undoes another's.

mongomock has no sessions, so ``RecordingClient`` wraps it: it hands out ``Session``
stand-ins that remember the thread that started them and records which session every
collection call received (serialising the calls themselves, as mongomock is not
thread-safe). ``store.transactions = True`` then makes the store behave as on a replica
set. What this proves is the store's own bookkeeping; that the server isolates and
retries the transactions is only shown against a real replica set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mongomock
import pytest
from mongo_stores import MONGO_URL, mongo_store

from workflow.buckets import Buckets
from workflow.errors import NotFound, TransitionConflict
from workflow.store.mongo import MongoStore
from workflow.wire import Outcome, Withdraw
from workflow.work import Work

#: The three writes of a move to the results, which run in the finishing call's transaction.
MOVE = {("work", "find_one_and_replace"), ("results", "replace_one"), ("work", "delete_one")}


class Session:
    """A stand-in for pymongo's ``ClientSession``: it remembers who started it."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextmanager
    def start_transaction(self) -> Iterator[None]:
        yield

    def with_transaction(self, callback: Callable[[Session], Any]) -> Any:
        return callback(self)


class RecordingClient:
    """mongomock behind a recorder of (thread, collection, method, session) per call.

    ``meet`` (a barrier), when set, holds each call named ``meet_on`` until the other
    threads reach theirs, so the test decides which calls overlap. ``before`` (a
    function), when set, runs once before the next call named ``before_on``.
    """

    def __init__(self) -> None:
        self.mock = mongomock.MongoClient()
        self.calls: list[tuple[int, str, str, Any]] = []
        self.lock = threading.Lock()
        self.meet: threading.Barrier | None = None
        self.meet_on = ("work", "find_one_and_replace")
        self.before: Callable[[], None] | None = None
        self.before_on: set[tuple[str, str]] = set()

    def start_session(self) -> Session:
        return Session()

    def __getitem__(self, name: str) -> RecordingDatabase:
        return RecordingDatabase(self, self.mock[name])

    def close(self) -> None:
        self.mock.close()


class RecordingDatabase:
    """A mongomock database whose collections record their calls."""

    def __init__(self, client: RecordingClient, db: Any) -> None:
        self.client, self.db = client, db

    def __getitem__(self, name: str) -> RecordingCollection:
        return RecordingCollection(self.client, self.db[name], name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class RecordingCollection:
    """A mongomock collection that records each call and its session."""

    def __init__(self, client: RecordingClient, raw: Any, name: str) -> None:
        self.client, self.raw, self.name = client, raw, name

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, session: Any = None, **kwargs: Any) -> Any:
            client = self.client
            with client.lock:
                client.calls.append((threading.get_ident(), self.name, method, session))
            if client.before is not None and (self.name, method) in client.before_on:
                before, client.before = client.before, None
                before()
            if client.meet is not None and (self.name, method) == client.meet_on:
                client.meet.wait()
            with client.lock:  # mongomock has no session and is not thread-safe
                return getattr(self.raw, method)(*args, **kwargs)

        return call


def _running_works(client: RecordingClient, n: int) -> tuple[MongoStore, list[dict[str, Any]]]:
    store = MongoStore("mongodb://mongomock/sessions", client=client)
    buckets = Buckets(store)
    buckets.deposit([Work(pipeline="p", retries=0).payload() for _ in range(n)])
    return store, buckets.withdraw(Withdraw(pipelines=["p"], limit=n))


def _in_threads(*jobs: Callable[[], object]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_two_finishes_at_once_each_run_in_their_own_session() -> None:
    client = RecordingClient()
    store, docs = _running_works(client, 2)
    store.transactions = True  # as on a replica set (the compose deployment)
    client.calls.clear()
    client.meet = threading.Barrier(2, timeout=10)  # both moves are under way together
    buckets = Buckets(store)

    errors = _in_threads(*(lambda doc=doc: buckets.complete(
                               Outcome(id=doc["id"], attempt=1, status="success"))
                           for doc in docs))  # fmt: skip
    calls = list(client.calls)

    assert errors == []
    assert sorted(d["id"] for d in store.results.find({})) == sorted(d["id"] for d in docs)
    assert store.work.count({}) == 0
    assert sum(n for *_, n in store.finished_per_minute(0)) == 2
    threads = {thread for thread, *_ in calls}
    assert len(threads) == 2
    own: dict[int, set[Any]] = {thread: set() for thread in threads}
    for thread, collection, method, session in calls:
        if session is not None:
            assert session.thread == thread, (
                f"{collection}.{method} of one thread ran in another thread's session")
        if (collection, method) in MOVE:
            assert session is not None, f"{collection}.{method} of a move ran outside a session"
            own[thread].add(session)
        else:  # the checks before, and the per-minute count after (hot: it would conflict)
            assert session is None, f"{collection}.{method} outside the move had a session"
    assert all(len(sessions) == 1 for sessions in own.values()), own
    first, second = own.values()
    assert first != second
    client.calls.clear()
    store.work.get(docs[0]["id"])
    assert [session for *_, session in client.calls] == [None]


def test_a_claim_keeps_a_change_made_since_it_read_the_work() -> None:
    client = RecordingClient()
    store = MongoStore("mongodb://mongomock/claims", client=client)
    buckets = Buckets(store)
    (id,) = buckets.deposit([Work(pipeline="p", priority=2).payload()])
    # An operator changes the priority after the claim read the work, before it wrote:
    # status and attempt are unchanged, so the claim's compare-and-set still matches.
    client.before = lambda: buckets.change(id, priority=5, by="ops")
    client.before_on = {("work", "replace_one"), ("work", "find_one_and_update")}

    (taken,) = buckets.withdraw(Withdraw(pipelines=["p"]))

    assert client.before is None, "the change ran in between"
    stored = store.work.get(id)
    assert stored is not None and stored["status"] == "running"
    assert stored["priority"] == 5
    assert [entry.get("action") for entry in stored["history"]] == ["change"]
    assert taken == stored


def test_a_delete_during_a_move_leaves_the_work_to_the_move() -> None:
    client = RecordingClient()
    store, (doc,) = _running_works(client, 1)  # no transactions: a standalone server
    deleted: list[int] = []
    # Between the move's first step (the bucket document marked as moving) and its second.
    client.before = lambda: deleted.append(store.work.delete([doc["id"]]))
    client.before_on = {("results", "replace_one")}

    Buckets(store).complete(Outcome(id=doc["id"], attempt=1, status="success"))

    assert deleted == [0], "a work being moved is no longer in the bucket"
    assert store.results.get(doc["id"]) is not None and store.work.get(doc["id"]) is None


def test_the_first_calls_wait_until_interrupted_moves_are_finished() -> None:
    client = RecordingClient()
    store, (doc,) = _running_works(client, 1)
    final = {**doc, "status": "success", "lease": None}
    # What a crash leaves: the bucket document marked as moving, not yet in the results.
    store.db["work"].replace_one({"_id": doc["id"]}, {**store.work.stored(final), "_moving": True})
    again = MongoStore("mongodb://mongomock/sessions", client=client)  # the next start
    tidying, release = threading.Event(), threading.Event()

    def hold() -> None:  # the first call, inside its repair sweep
        tidying.set()
        release.wait(10)

    client.before, client.before_on = hold, {("work", "find")}
    first = threading.Thread(target=again.work.count, args=({},))
    first.start()
    assert tidying.wait(10)
    seen: list[Any] = []
    second = threading.Thread(target=lambda: seen.append(again.results.get(doc["id"])))
    second.start()
    second.join(0.5)  # on its own it would answer at once: before the repair, too early
    release.set()
    for thread in (first, second):
        thread.join(10)

    assert seen == [final]


@pytest.mark.skipif(not MONGO_URL, reason="sessions and transactions need a real MongoDB "
                    "replica set (WORKFLOW_TEST_MONGO_URL)")  # fmt: skip
def test_concurrent_finishes_on_a_real_server_move_each_work_once() -> None:
    stores = [mongo_store()]
    stores += [MongoStore(stores[0].url) for _ in range(3)]  # four servers, one database
    try:
        buckets = Buckets(stores[0])
        buckets.deposit([Work(pipeline="race", retries=0).payload() for _ in range(200)])
        docs = buckets.withdraw(Withdraw(pipelines=["race"], limit=200))
        start = threading.Barrier(len(stores), timeout=30)
        refused: list[Exception] = []

        def finish(store: MongoStore, mine: list[dict[str, Any]]) -> None:
            start.wait()
            for doc in mine:
                try:
                    done = Outcome(id=doc["id"], attempt=doc["attempt"], status="success")
                    Buckets(store).complete(done)
                except (NotFound, TransitionConflict) as exc:  # the other finish won
                    refused.append(exc)

        # Every work is finished by two servers at once, every server finishes 100.
        halves = [docs[:100], docs[100:]]
        errors = _in_threads(*(lambda s=s, i=i: finish(s, halves[i % 2])
                               for i, s in enumerate(stores)))  # fmt: skip
        assert errors == [], f"transactions={stores[0].transactions}: {errors[:3]}"
        assert stores[0].work.count({}) == 0
        ids = [d["id"] for d in stores[0].db["results"].find({}, {"id": 1})]
        assert sorted(ids) == sorted(d["id"] for d in docs)
        assert sum(n for *_, n in stores[0].finished_per_minute(0)) == 200
    finally:
        stores[0].client.drop_database(stores[0].db.name)
        for store in stores:
            store.close()
