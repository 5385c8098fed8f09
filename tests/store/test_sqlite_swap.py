"""The SQLite store's compare-and-set: one guarded statement that names the expected
status and attempt, the errors of one that matches nothing, and the counts after a
change of pipeline or a move to the results that the results refuse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from workflow.buckets import Buckets
from workflow.errors import DuplicateWork, NotFound, TransitionConflict
from workflow.store.sqlite import SqliteStore
from workflow.wire import Outcome, Withdraw
from workflow.work import Work


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(f"sqlite:///{tmp_path / 'swap.db'}")
    yield opened
    opened.close()


@contextmanager
def _statements(store: SqliteStore) -> Iterator[list[str]]:
    """The statements the writer connection runs inside the block."""
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        store._writer.set_trace_callback(None)


def _touching(statements: list[str], table: str) -> list[str]:
    return [s.split()[0] for s in statements
            if f" {table} " in f" {s} ".replace("\n", " ")]  # fmt: skip


def _rowid(store: SqliteStore, id: str) -> int | None:
    with store.reading() as db:
        row = db.execute("SELECT rowid FROM work WHERE id = ?", (id,)).fetchone()
    return None if row is None else int(row[0])


def test_a_state_change_is_one_guarded_statement(store: SqliteStore) -> None:
    buckets = Buckets(store)
    (id,) = buckets.deposit([Work(pipeline="p").payload()])
    with _statements(store) as seen:
        (taken,) = buckets.withdraw(Withdraw(pipelines=["p"]))
    assert _touching(seen, "work") == ["SELECT", "UPDATE"], "the queued work found, then taken"
    (claim,) = [s for s in seen if s.startswith("UPDATE work")]
    assert "status =" in claim and "RETURNING" in claim

    with _statements(store) as seen:
        buckets.heartbeat(id, taken["attempt"], 60)
    assert _touching(seen, "work") == ["UPDATE"], "no read before the write"
    (heartbeat,) = [s for s in seen if s.startswith("UPDATE work")]
    assert "status =" in heartbeat and "attempt =" in heartbeat and "RETURNING" in heartbeat

    with _statements(store) as seen:
        buckets.complete(Outcome(id=id, attempt=taken["attempt"], status="success"))
    assert _touching(seen, "work") == ["DELETE"], "the move out of the bucket is one delete"
    assert store.work.get(id) is None
    assert store.results.get(id)["status"] == "success"  # type: ignore[index]
    assert store.work.tally() == [] and store.results.tally() == [("p", "success", 1)]


def test_a_swap_that_matches_nothing_says_why(store: SqliteStore) -> None:
    doc = Work(pipeline="p", id="w").payload() | {"status": "queued", "attempt": 0}
    store.work.insert([doc])
    with pytest.raises(NotFound) as missing:
        store.work.swap("nope", {"status": "queued", "attempt": 0}, doc)
    assert missing.value.message == "no work nope in the bucket"
    assert missing.value.field == "id" and missing.value.details == {"id": "nope"}
    with pytest.raises(TransitionConflict) as stale:
        store.work.swap("w", {"status": "running", "attempt": 1}, doc)
    assert stale.value.message == (
        "work w is queued at attempt 0, not as expected {'status': 'running', 'attempt': 1}")
    assert stale.value.field == "attempt"
    assert stale.value.details == {"id": "w", "status": "queued", "attempt": 0,
                                   "expected": {"status": "running", "attempt": 1}}  # fmt: skip
    with pytest.raises(NotFound) as gone:
        store.results.swap("w", {"status": "success"}, doc)
    assert gone.value.message == "no work w in the results"
    with pytest.raises(TransitionConflict) as finished:
        store.finish("w", {"status": "running"}, {**doc, "status": "success"})
    assert finished.value.field == "status"
    assert store.work.get("w") == doc, "nothing changed"
    assert store.work.tally() == [("p", "queued", 1)] and store.results.tally() == []


def test_a_swap_that_changes_the_pipeline_moves_the_counts(store: SqliteStore) -> None:
    doc = Work(pipeline="p", id="w").payload() | {"status": "queued", "attempt": 0}
    store.work.insert([doc])
    store.work.swap("w", {"status": "queued", "attempt": 0}, {**doc, "pipeline": "q"})
    assert store.work.tally() == [("q", "queued", 1)]
    # An expectation that names no status: the status may change too.
    store.work.swap("w", {"attempt": 0}, {**doc, "pipeline": "r", "status": "running"})
    assert store.work.tally() == [("r", "running", 1)]
    with pytest.raises(TransitionConflict):
        store.work.swap("w", {"attempt": 3}, {**doc, "pipeline": "s"})
    assert store.work.get("w")["pipeline"] == "r"  # type: ignore[index]

    final = {**doc, "pipeline": "r", "status": "success"}
    store.finish("w", {"status": "running", "attempt": 0}, final)
    store.results.swap("w", {"status": "success"}, {**final, "pipeline": "t"})
    assert store.results.tally() == [("t", "success", 1)] and store.work.tally() == []
    assert store.results.count({"pipeline": "t"}) == 1


def test_a_move_the_results_refuse_leaves_the_work_as_it_was(store: SqliteStore) -> None:
    buckets = Buckets(store)
    ids = buckets.deposit([Work(pipeline="p", id=id).payload() for id in ("a", "b")])
    before = {id: (store.work.get(id), _rowid(store, id)) for id in ids}
    done = {**store.work.get("a"), "status": "cancelled"}  # type: ignore[dict-item]
    with store.write() as db:  # in the results already, as a file edited by hand may be
        store.results.insert_row(db, done)
    with store.batch():  # no savepoint for the move: it must undo itself
        with pytest.raises(DuplicateWork) as refused:
            store.finish("a", {"status": "queued", "attempt": 0}, done)
        store.finish("b", {"status": "queued", "attempt": 0}, {**before["b"][0],  # type: ignore[dict-item]
                                                               "status": "cancelled"})
    assert refused.value.message == "work a is in the results already"
    assert (store.work.get("a"), _rowid(store, "a")) == before["a"], "back with its rowid"
    assert store.work.get("b") is None and store.results.get("b") is not None
    assert store.work.tally() == [("p", "queued", 1)]
    assert store.results.tally() == [("p", "cancelled", 2)]
