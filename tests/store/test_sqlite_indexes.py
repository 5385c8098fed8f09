"""The SQLite store's derived tables follow every write (tallies, tags, text), and its
prompt writes never wait."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from workflow.buckets import Buckets
from workflow.errors import WouldWait
from workflow.results import Results, Search
from workflow.store.sqlite import READERS, SqliteStore
from workflow.wire import Withdraw
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
    assert _rows(store, "results_tags") == 0
    store.close()


def test_text_pages_are_the_same_walked_or_sorted(tmp_path: Path) -> None:
    import pytest

    from workflow.store import sqlite_collection

    store = SqliteStore(f"sqlite:///{tmp_path / 'walk.db'}")
    results = Results(store)
    store.results.insert([_finished(f"w{i:02d}", [], "pulsar" if i % 3 else "quiet")
                          for i in range(30)])  # fmt: skip
    sorted_pages = [_ids(results, text="pulsar", skip=skip, limit=7) for skip in (0, 7, 14)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_collection, "WALK", 0)  # every text search walks the sort order now
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


def test_reads_share_a_small_pool_of_connections(tmp_path: Path) -> None:
    # Each connection holds a page cache and prepared statements; the server's worker
    # threads come and go, and must not open (and keep) one each over a long run.
    store = SqliteStore(f"sqlite:///{tmp_path / 'readers.db'}")
    store.results.insert([_finished("x", [], "one")])
    used: set[int] = set()

    def read_one() -> None:
        with store.reading() as db:
            used.add(id(db))
            db.execute("SELECT count(*) FROM results").fetchone()

    for _ in range(30):  # one after another, each on a new thread: one connection
        thread = threading.Thread(target=read_one)
        thread.start()
        thread.join()
    assert len(used) == 1 and len(store._idle) == 1
    many = READERS + 4
    gate = threading.Barrier(many)
    held: list[sqlite3.Connection] = []

    def read_together() -> None:
        with store.reading() as db:
            held.append(db)
            gate.wait(timeout=10)  # all hold a connection at once

    threads = [threading.Thread(target=read_together) for _ in range(many)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(db) for db in held}) == many
    assert len(store._idle) == READERS, "the pool keeps READERS; the others are closed"
    closed = [db for db in held if db not in store._idle]
    assert len(closed) == 4
    for db in closed:
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT 1")
    with store.reading() as db:
        store.close()  # a read still running closes its own connection when it ends
        assert db.execute("SELECT count(*) FROM results").fetchone() == (1,)
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")


def _rows(store: SqliteStore, table: str) -> int:
    with store.reading() as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_prompt_write_never_waits_and_changes_nothing_when_busy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    store = SqliteStore(url)
    buckets = Buckets(store)
    (id,) = buckets.deposit([{"pipeline": "busy", "function": "m.f"}])

    # Another thread of this process is writing: the prompt write gives way at once.
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    with store.promptly() as prompt, pytest.raises(WouldWait):
        assert prompt
        buckets.withdraw(Withdraw(pipelines=["busy"], limit=1))
    release.set()
    holder.join()

    # Another process (here: another connection) holds the file's write lock.
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    began = time.monotonic()
    with store.promptly(), pytest.raises(WouldWait):
        buckets.withdraw(Withdraw(pipelines=["busy"], limit=1))
    assert time.monotonic() - began < 1, "no waiting for the busy timeout"
    other.execute("ROLLBACK")
    other.close()

    assert store.work.get(id)["status"] == "queued", "nothing changed"  # type: ignore[index]
    with store.promptly():
        (taken,) = buckets.withdraw(Withdraw(pipelines=["busy"], limit=1))
    assert taken["id"] == id and taken["status"] == "running"
    store.close()


def test_words_are_indexed_in_bulk_later_and_a_text_search_never_misses_any(
    tmp_path: Path,
) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'later.db'}")
    results = Results(store)

    def unindexed() -> int:
        return _rows(store, "results_unindexed")

    store.results.insert([_finished(f"w{n}", [], f"quasar number{n}") for n in range(5)])
    assert unindexed() == 5, "finishing only notes the words to index"
    store.results.delete(["w4"])  # gone before it was indexed
    assert _ids(results, text="quasar") == ["w0", "w1", "w2", "w3"], "search indexes first"
    assert unindexed() == 0
    store.results.insert([_finished("w5", [], "pulsar")])
    assert store.index_text() == 1 and store.index_text() == 0 and unindexed() == 0
    store.results.insert([_finished("w6", [], "magnetar")])
    store.tidy()  # what the server runs every reap interval
    assert unindexed() == 0
    assert _rows(store, "results_text") == 6
    assert _ids(results, text="magnetar") == ["w6"]
    store.close()


def test_export_reads_every_match_a_chunk_at_a_time(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'export.db'}")
    docs = [_finished(f"w{n:02d}", ["even" if n % 2 == 0 else "odd"], "x") for n in range(11)]
    for n, doc in enumerate(docs):
        doc["creation"] = 1000.0 + n // 3  # ties: the id breaks them
    store.results.insert(docs)
    results = Results(store)
    everything = list(results.export(Search(), chunk=3))
    assert [d["id"] for d in everything] == [f"w{n:02d}" for n in reversed(range(11))]
    evens = [d["id"] for d in results.export(Search(tags=["even"]), chunk=2)]
    assert evens == [f"w{n:02d}" for n in reversed(range(0, 11, 2))]
    store.close()
