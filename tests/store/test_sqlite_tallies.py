"""The SQLite store's counts (per pipeline and status, and finished per minute) equal
what the tables hold after every kind of write, including writes rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.buckets import Buckets
from workflow.store.sqlite import SqliteStore
from workflow.wire import Bulk, BulkFilter, HeldAttempt, Outcome, Withdraw
from workflow.work import Work


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _counted(store: SqliteStore, table: str) -> list[tuple[str, str, int]]:
    with store.reading() as db:
        rows = db.execute(f"SELECT pipeline, status, count(*) FROM {table} "
                          "GROUP BY pipeline, status ORDER BY pipeline, status")  # fmt: skip
        return [tuple(row) for row in rows]


def _assert_true(store: SqliteStore, finished_ever: int) -> None:
    assert store.work.tally() == _counted(store, "work")
    assert store.results.tally() == _counted(store, "results")
    with store.reading() as db:
        minutes = db.execute("SELECT coalesce(sum(n), 0) FROM results_minutes").fetchone()
    assert minutes[0] == finished_ever


def test_counts_follow_every_write_and_every_rollback(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'tally.db'}")
    clock = Clock()
    buckets = Buckets(store, clock=clock)
    buckets.deposit([Work(pipeline=p, retries=r, parameters={"i": i}).payload()
                     for i in range(12) for p, r in (("a", 1), ("b", 2))])  # fmt: skip
    _assert_true(store, 0)

    # Claims and outcomes, one by one and in one exchange with a stale outcome among them.
    running = buckets.withdraw(Withdraw(pipelines=["a"], limit=6, lease=60))
    buckets.complete(Outcome(id=running[0]["id"], attempt=1, status="success"))
    # One attempt left: queued again.
    buckets.complete(Outcome(id=running[1]["id"], attempt=1, status="failure"))
    buckets.complete(Outcome(id=running[2]["id"], attempt=1, status="retry", retry_delay=0))
    buckets.release(running[3]["id"], 1)
    stale = Outcome(id=running[4]["id"], attempt=9, status="success")
    good = Outcome(id=running[5]["id"], attempt=1, status="success")
    replies, claimed = buckets.exchange([stale, good], Withdraw(pipelines=["b"], limit=3, lease=60))
    assert [r["ok"] for r in replies] == [False, True] and len(claimed) == 3
    buckets.heartbeat_many([HeldAttempt(id=w["id"], attempt=1) for w in claimed], 60)
    _assert_true(store, 2)

    # Leases running out: lost attempts queued again or finished.
    clock.now += 3600
    assert buckets.expire() == 4  # running[4] and the three claimed from b
    _assert_true(store, 2)

    # Operators: cancel queued and running, change, bulk, retry a result, delete.
    (again,) = buckets.withdraw(Withdraw(pipelines=["a"], limit=1, lease=60))
    buckets.cancel(again["id"])
    queued = buckets.store.work.find({"pipeline": "a", "status": "queued"}, limit=3)
    buckets.cancel(queued[0]["id"])
    buckets.change(queued[1]["id"], priority=5)
    buckets.bulk(Bulk(action="change", filter=BulkFilter(pipeline=["b"]), priority=3))
    buckets.retry(running[0]["id"])
    assert buckets.delete([queued[2]["id"], "no-such-work"]) == 1
    finished = len(store.results.find({}, limit=100))
    assert store.results.delete([running[0]["id"]]) == 1
    _assert_true(store, finished)

    # Writes that roll back leave the counts as they were: a whole transaction, and
    # one savepoint inside a batch whose other writes stay.
    extra = Work(pipeline="c").payload() | {"status": "queued", "attempt": 0}
    with pytest.raises(RuntimeError), store.write() as db:
        store.work.insert_row(db, extra)
        raise RuntimeError("undo")
    _assert_true(store, finished)
    with store.batch():
        buckets.deposit([Work(pipeline="c").payload()])
        with pytest.raises(RuntimeError), store.write() as db:
            store.work.insert_row(db, extra)
            raise RuntimeError("undo")
    assert ("c", "queued", 1) in store.work.tally()
    _assert_true(store, finished)

    # Everything through to the end (after the backoff of the lost attempts).
    clock.now += 3600
    while works := buckets.withdraw(Withdraw(pipelines=None, limit=50, lease=60)):
        for work in works:
            buckets.complete(Outcome(id=work["id"], attempt=work["attempt"], status="success"))
    assert store.work.tally() == []
    _assert_true(store, len(store.results.find({}, limit=100)) + 1)
    store.close()


def test_a_file_that_still_has_the_count_triggers_loses_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqliteStore(url)
    with store.write() as db:  # as files written before the store kept the counts
        db.execute("CREATE TRIGGER work_tally_insert AFTER INSERT ON work BEGIN "
                   "INSERT INTO work_tally VALUES (new.pipeline, new.status, 1) "
                   "ON CONFLICT (pipeline, status) DO UPDATE SET n = n + 1; END")  # fmt: skip
        db.execute("PRAGMA user_version = 0")  # (which were not versioned either)
    store.close()
    store = SqliteStore(url)
    Buckets(store).deposit([Work(pipeline="old").payload()])
    assert store.work.tally() == [("old", "queued", 1)]
    store.close()
