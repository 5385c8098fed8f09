"""The SQLite store's derived tables follow every write: tallies, tags, text."""

from __future__ import annotations

from pathlib import Path

from workflow.results import Results, Search
from workflow.store.sqlite import SqliteStore
from workflow.work import Work


def _finished(name: str, tags: list[str], words: str) -> dict[str, object]:
    doc = Work(pipeline="idx", id=name, tags=tags, parameters={"note": words}).payload()
    doc["status"] = "success"
    return doc


def _ids(results: Results, **search: object) -> list[str]:
    found, total = results.search(Search(order="asc", sort="id", **search))  # type: ignore[arg-type]
    assert total == len(found) or "limit" in search
    return [doc["id"] for doc in found]


def test_tags_text_and_tallies_follow_insert_update_delete(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'idx.db'}")
    results = Results(store)
    store.results.insert([_finished("a", ["x", "y"], "crab nebula"),
                          _finished("b", ["y"], "vela pulsar"),
                          _finished("c", [], "crab pulsar")])  # fmt: skip
    assert _ids(results, tags=["x"]) == ["a"]
    assert _ids(results, tags=["y", "x"]) == ["a", "b"]
    assert _ids(results, text="crab") == ["a", "c"]
    assert _ids(results, text="pulsar", tags=["y"]) == ["b"]

    changed = {**_finished("a", ["z"], "quiet sky")}
    store.results.swap("a", {"status": "success"}, changed)
    assert _ids(results, tags=["x"]) == []
    assert _ids(results, tags=["z"]) == ["a"]
    assert _ids(results, text="crab") == ["c"]
    assert _ids(results, text="quiet") == ["a"]

    assert store.results.delete(["a", "b"]) == 2
    assert _ids(results, tags=["z", "y"]) == []
    assert _ids(results, text="quiet") == []
    assert store.results.count({}) == 1 and store.results.tally() == [("idx", "success", 1)]
    rows = store.read().execute("SELECT count(*) FROM results_tags").fetchone()[0]
    assert rows == 0
    store.close()


def test_text_pages_are_the_same_walked_or_sorted(tmp_path: Path) -> None:
    import pytest

    from workflow.store import sqlite

    store = SqliteStore(f"sqlite:///{tmp_path / 'walk.db'}")
    results = Results(store)
    store.results.insert([_finished(f"w{i:02d}", [], "pulsar" if i % 3 else "quiet")
                          for i in range(30)])  # fmt: skip
    sorted_pages = [_ids(results, text="pulsar", skip=skip, limit=7) for skip in (0, 7, 14)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite, "WALK", 0)  # every text search walks the sort order now
        walked_pages = [_ids(results, text="pulsar", skip=skip, limit=7) for skip in (0, 7, 14)]
    assert walked_pages == sorted_pages
    assert sum(len(page) for page in walked_pages) == 20
    store.close()


def test_a_batch_reads_and_writes_on_a_fresh_thread_without_deadlock(tmp_path: Path) -> None:
    import threading

    from workflow.errors import NotFound, TransitionConflict

    store = SqliteStore(f"sqlite:///{tmp_path / 'batch.db'}")
    store.results.insert([_finished("x", [], "one")])
    outcome: list[object] = []

    def batch() -> None:
        with store.batch():
            outcome.append(store.results.get("x") is not None)  # first read of this thread
            try:
                store.results.swap("x", {"status": "failure"}, _finished("x", [], "two"))
            except TransitionConflict:
                outcome.append("conflict")  # undone alone; the batch goes on
            try:
                store.results.swap("missing", {"status": "success"}, _finished("y", [], ""))
            except NotFound:
                outcome.append("missing")
            store.results.swap("x", {"status": "success"}, _finished("x", ["t"], "three"))

    thread = threading.Thread(target=batch)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the batch deadlocked"
    assert outcome == [True, "conflict", "missing"]
    assert store.results.get("x")["tags"] == ["t"]  # type: ignore[index]
    store.close()
