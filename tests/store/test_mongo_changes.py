"""Following a MongoDB database's changes (``workflow.store.mongo_changes``): which events
wake held requests, and how a failing stream is opened again, then given up.

mongomock has no change streams, so ``FakeStream`` stands in for pymongo's: it hands out
change events shaped like the server's, after mongomock has applied to them the filter
and projection the server would (``MATCH``, ``KEPT``). That a real replica set sends
these events, and that servers wake each other through them, only a real server shows
(``tests/service/test_waiting.py``, with ``WORKFLOW_TEST_MONGO_URL``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import mongomock
import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from workflow.errors import StoreUnavailable
from workflow.store import mongo_changes
from workflow.store.mongo import MongoStore
from workflow.store.mongo_changes import KEPT, MATCH, StreamFollowing

#: A unix time still to come, and one gone.
LATER, EARLIER = time.time() + 3600, time.time() - 3600
WORK = {"id": "w1", "pipeline": "p", "status": "queued", "attempt": 0, "not_before": None,
        "parameters": {"scan": 7}, "lease": None}  # fmt: skip
LEASE = {"runner": "r", "claimed": 1.0, "heartbeat": 2.0, "expires": 60.0}


def event(n: int, op: str, coll: str, id: str, **fields: Any) -> dict[str, Any]:
    """A change event as the server sends it, its resume token ``t<n>``."""
    return {"_id": {"_data": f"t{n}"}, "operationType": op, "clusterTime": n,
            "ns": {"db": "workflow", "coll": coll}, "documentKey": {"_id": id},
            **fields}  # fmt: skip


def update(n: int, id: str, **changed: Any) -> dict[str, Any]:
    return event(n, "update", "work", id, updateDescription={
        "updatedFields": changed, "removedFields": [], "truncatedArrays": []})


#: What the store writes, in the order a work's life writes it, with what each wakes:
#: ("claimable", not_before or None), ("finished", id), or None.
LIFE = [
    (event(1, "insert", "work", "w1", fullDocument=WORK), ("claimable", None)),  # a deposit
    (update(2, "w1", status="running", attempt=1, lease=LEASE, not_before=None), None),  # claim
    (event(3, "replace", "work", "w1", fullDocument={**WORK, "status": "running",
                                                     "lease": LEASE}), None),  # a heartbeat
    (event(4, "replace", "work", "w1", fullDocument={**WORK, "attempt": 1,
                                                     "not_before": LATER}),
     ("claimable", LATER)),  # queued again, with a backoff
    (event(5, "replace", "work", "w1", fullDocument={**WORK, "attempt": 2,
                                                     "not_before": EARLIER}),
     ("claimable", None)),  # queued again, its backoff over
    (update(6, "w1", status="running", attempt=3), None),
    (event(7, "replace", "work", "w1", fullDocument={**WORK, "status": "success",
                                                     "_moving": True}), None),  # move, 1
    (event(8, "insert", "results", "w1", fullDocument={**WORK, "status": "success"}),
     ("finished", "w1")),  # move, 2
    (event(9, "delete", "work", "w1"), None),  # move, 3
    (event(10, "update", "minutes", "m", updateDescription={"updatedFields": {"n": 2}}), None),
    (event(11, "replace", "pipelines", "p", fullDocument={"settings": {"paused": True}}), None),
    (event(12, "replace", "pipelines", "p", fullDocument={"settings": {"paused": False}}),
     ("claimable", None)),  # resumed
    (update(13, "w2", status="queued"), ("claimable", None)),  # by hand, in the shell
    (event(14, "replace", "results", "w1", fullDocument={**WORK, "status": "retried"}), None),
]  # fmt: skip


class FakeStream:
    """Stands in for pymongo's ``ChangeStream``: the events the server would let through,
    one per ``try_next``, then ``fail`` raised (or, without one, nothing more)."""

    def __init__(self, events: list[dict[str, Any]], fail: Exception | None = None):
        changes = mongomock.MongoClient().db.changes
        if events:
            changes.insert_many([dict(e) for e in events])
        self.left = list(changes.find(MATCH, KEPT))
        self.fail = fail
        self.alive = True
        self.closed = False
        self.resume_token: Any = {"_data": "t0"}

    def try_next(self) -> dict[str, Any] | None:
        if self.left:
            change = self.left.pop(0)
            self.resume_token = change["_id"]
            self.alive = change["operationType"] != "invalidate"  # pymongo's ends there
            return change
        if self.fail is not None:
            raise self.fail
        time.sleep(0.01)  # as the server would wait for an event
        return None

    def close(self) -> None:
        self.closed, self.alive = True, False


class Heard:
    """What the callbacks were told, and whether the following was given up."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lost = threading.Event()

    def follow(self, streams: list[Any], opened: list[Any], **options: Any) -> StreamFollowing:
        """Follow ``streams``, one per opening (a stream that is an exception fails to
        open); each opening's resume token is appended to ``opened``."""

        def open(after: Any) -> Any:
            opened.append(after)
            stream = streams.pop(0)
            if isinstance(stream, Exception):
                raise stream
            return stream

        return StreamFollowing(open, lambda at: self.calls.append(("claimable", at)),
                               lambda id: self.calls.append(("finished", id)), self.lost.set,
                               **options)  # fmt: skip


def _wait_for(condition: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)


def test_only_what_may_make_a_work_claimable_or_finish_one_wakes_anything() -> None:
    heard, stream = Heard(), FakeStream([change for change, _ in LIFE])
    following = heard.follow([stream], [])
    expected = [wakes for _, wakes in LIFE if wakes is not None]
    _wait_for(lambda: len(heard.calls) >= len(expected))
    following.stop()
    assert heard.calls == expected
    assert stream.closed and not heard.lost.is_set()


def test_the_server_sends_no_claim_or_heartbeat_and_only_the_fields_read() -> None:
    passed = FakeStream([change for change, _ in LIFE]).left
    assert [c["_id"]["_data"] for c in passed] == ["t1", "t4", "t5", "t8", "t12", "t13"]
    assert passed[0]["fullDocument"] == {"not_before": None}, "a deposit's parameters stay"


def test_a_failed_stream_opens_again_after_its_token_and_is_given_up_after_retries() -> None:
    heard, opened = Heard(), []
    first = FakeStream([LIFE[0][0]], fail=AutoReconnect("primary stepped down"))
    second = FakeStream([update(20, "w2", status="queued")], fail=AutoReconnect("again"))
    streams = [first, second, AutoReconnect("no primary"), AutoReconnect("no primary")]
    heard.follow(streams, opened, retries=2, pause=0)
    assert heard.lost.wait(5), "never gave up"
    assert opened == [None, {"_data": "t1"}, {"_data": "t20"}, {"_data": "t20"}]
    assert heard.calls == [("claimable", None), ("claimable", None)], "nothing twice"
    assert first.closed and second.closed and streams == []


def test_a_stream_the_server_ends_is_opened_again_after_its_token() -> None:
    heard, opened = Heard(), []
    ended = FakeStream([LIFE[0][0]])  # then the database is dropped: the stream ends
    ended.left.append({"_id": {"_data": "t2"}, "operationType": "invalidate"})
    following = heard.follow([ended, FakeStream([])], opened, retries=1, pause=0)
    _wait_for(lambda: len(opened) == 2)
    following.stop()
    assert opened == [None, {"_data": "t2"}]
    assert heard.calls == [("claimable", None)] and not heard.lost.is_set()


def test_stop_closes_the_stream_and_ends_the_thread_promptly() -> None:
    heard, stream = Heard(), FakeStream([])
    following = heard.follow([stream], [])
    began = time.monotonic()
    following.stop()
    assert stream.closed and time.monotonic() - began < 1
    assert heard.calls == [] and not heard.lost.is_set()


def test_follow_on_mongomock_and_on_a_standalone_server_is_none(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    ignore = (lambda at: None, lambda id: None, lambda: None)
    mock = MongoStore("mongodb://mongomock/x", client=mongomock.MongoClient())
    assert mock.follow(*ignore) is None
    store = MongoStore("mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=100")
    try:
        standalone = OperationFailure("The $changeStream stage is only supported on replica "
                                      "sets", code=40573)  # fmt: skip
        for error, outcome in ((standalone, None), (AutoReconnect("refused"), StoreUnavailable)):

            def watch(db: Any, after: Any, error: Exception = error) -> Any:
                raise error

            monkeypatch.setattr(mongo_changes, "watch", watch)
            if outcome is None:
                assert store.follow(*ignore) is None
            else:
                with pytest.raises(StoreUnavailable, match="change stream not opened: refused"):
                    store.follow(*ignore)
    finally:
        store.close()
