"""A deleted result leaves nothing behind that is keyed by its row number: SQLite hands
that number to the next result, which must neither clash with nor inherit anything."""

from __future__ import annotations

from pathlib import Path

from workflow.buckets import Buckets
from workflow.results import Results, Search
from workflow.store.sqlite import SqliteStore
from workflow.wire import Outcome, Withdraw
from workflow.work import Work


def _finish(buckets: Buckets, work: Work) -> dict[str, object]:
    """Deposit ``work``, claim it and record its success; return the finished work."""
    buckets.deposit([work.payload()])
    (taken,) = buckets.withdraw(Withdraw(pipelines=[work.pipeline]))
    done = Outcome(id=taken["id"], attempt=taken["attempt"], status="success", results={"ok": 1})
    return buckets.complete(done)


def _found(results: Results, text: str) -> list[str]:
    found, total = results.search(Search(text=text))
    assert total == len(found)
    return [doc["id"] for doc in found]


def _rowids(store: SqliteStore, table: str) -> list[int]:
    with store.reading() as db:
        return [int(row[0]) for row in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]


def test_the_next_result_after_deleting_an_unindexed_newest_one_is_recorded(
    tmp_path: Path,
) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'reuse.db'}")
    buckets, results = Buckets(store), Results(store)
    _finish(buckets, Work(pipeline="p", id="old", parameters={"source": "vela"}))
    store.index_text()
    _finish(buckets, Work(pipeline="p", id="a", parameters={"source": "crab"}))
    assert results.delete(["a"]) == 1  # before the background indexing saw it

    done = _finish(buckets, Work(pipeline="p", id="b", parameters={"source": "frb"}))
    assert done["status"] == "success"
    assert results.result("b")["status"] == "success"
    assert store.work.get("b") is None, "b left the bucket"
    assert _found(results, "frb") == ["b"]
    assert _found(results, "crab") == []
    assert _rowids(store, "results_unindexed") == [], "every marker's result was indexed"

    # The same for a finished work posted straight to the results (CHIME's transfer).
    results.delete(["b"])
    posted = {**Work(pipeline="p", id="c", parameters={"source": "moon"}).payload(),
              "status": "success"}  # fmt: skip
    assert results.deposit([posted]) == {"p": 1}
    assert _found(results, "moon") == ["c"] and _found(results, "frb") == []
    assert store.results.tally() == [("p", "success", 2)]
    store.close()


def test_a_file_left_with_a_marker_of_a_deleted_result_is_repaired_on_open(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqliteStore(url)
    buckets = Buckets(store)
    _finish(buckets, Work(pipeline="p", id="keep", parameters={"source": "vela"}))
    _finish(buckets, Work(pipeline="p", id="a", parameters={"source": "crab"}))
    # What a file written before this fix holds: the result gone, its marker not.
    with store.write() as db:
        db.execute("DROP TRIGGER IF EXISTS results_unindexed_delete")
        db.execute("DELETE FROM results WHERE id = 'a'")
        db.execute("PRAGMA user_version = 0")  # (nor was it versioned)
    assert _rowids(store, "results_unindexed") == [1, 2]
    store.close()

    store = SqliteStore(url)
    assert _rowids(store, "results_unindexed") == [1], "the dangling marker is gone"
    buckets, results = Buckets(store), Results(store)
    assert _finish(buckets, Work(pipeline="p", id="b", parameters={"source": "frb"})
                   )["status"] == "success"  # fmt: skip
    assert _found(results, "frb") == ["b"] and _found(results, "vela") == ["keep"]
    assert _found(results, "crab") == []
    store.results.delete(["b"])  # the reopened file deletes markers by itself again
    assert _rowids(store, "results_unindexed") == []
    store.close()
