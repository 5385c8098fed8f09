"""The SQLite schema's versions (``PRAGMA user_version``): a file made before they
existed is adopted with its data, a new file starts at the current version, each step
runs once and all of a file's pending steps in one transaction, and a file newer than
the code is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workflow.buckets import Buckets
from workflow.errors import ConfigurationError, StoreUnavailable
from workflow.results import Results, Search
from workflow.store import sqlite_migrations
from workflow.store.sqlite import SqliteStore
from workflow.wire import Outcome, Withdraw

#: A file of the store as it was before versions (see the comments at its top).
UNVERSIONED = Path(__file__).parent / "data" / "unversioned.sql"
#: Its tables, each as the file holds it (the text index's own tables aside).
TABLES = ("work", "results", "results_tags", "results_unindexed", "results_minutes",
          "pipelines", "work_tally", "results_tally")  # fmt: skip
#: What the steps after the first add (2: the runners on record; 3: logs; 4: documents).
LATER = {"runners", "runners_seen", "sqlite_autoindex_runners_1", "work_runner", "logs",
         "sqlite_autoindex_logs_1", "documents", "documents_status",
         "sqlite_autoindex_documents_1", "outbox", "outbox_state", "outbox_work",
         "sqlite_autoindex_outbox_1", "sqlite_sequence"}
#: A step after the real ones, whose every run leaves a row.
PROBE = "CREATE TABLE IF NOT EXISTS probe (n INTEGER); INSERT INTO probe VALUES (1);"


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    """The rows of ``sql`` read by a connection of its own (no store involved)."""
    db = sqlite3.connect(path)
    try:
        return [tuple(row) for row in db.execute(sql)]
    finally:
        db.close()


def _version(path: Path) -> int:
    return int(_raw(path, "PRAGMA user_version")[0][0])


def _contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, and the schema, in a stable order."""
    found = {}
    for table in TABLES:  # with the rowid that the text index and tags go by, if any
        rowid = "rowid, " if table in ("work", "results") else ""
        found[table] = sorted(_raw(path, f"SELECT {rowid}* FROM {table}"), key=repr)
    found["schema"] = _raw(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    return found


def _ids(results: Results, **search: object) -> list[str]:
    found, total = results.search(Search(sort="id", order="asc", **search))  # type: ignore[arg-type]
    assert total == len(found)
    return [doc["id"] for doc in found]


def test_a_file_made_before_versions_is_adopted_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(UNVERSIONED.read_text())
    db.close()
    assert _version(path) == 0
    before = _contents(path)
    assert len(before["work"]) == 4 and len(before["results"]) == 3

    store = SqliteStore(f"sqlite:///{path}")
    assert _version(path) == len(sqlite_migrations.MIGRATIONS)
    after = _contents(path)
    assert {k: v for k, v in after.items() if k != "schema"} == {
        k: v for k, v in before.items() if k != "schema"}, "adopting the file changed no row"
    assert [row for row in after["schema"] if row in before["schema"]] == before["schema"]
    added = {row[1] for row in after["schema"] if row not in before["schema"]}
    assert added == LATER, "only the later steps' tables and indexes are new"
    assert _raw(path, "PRAGMA integrity_check") == [("ok",)]

    # What the file holds reads as it did.
    assert store.work.tally() == [("calibrate", "queued", 1), ("search", "queued", 2),
                                  ("search", "running", 1)]  # fmt: skip
    assert store.results.tally() == [("calibrate", "cancelled", 1), ("search", "failure", 1),
                                     ("search", "success", 1)]  # fmt: skip
    assert store.results.get("done-1")["results"] == {"dm": 56.7, "note": "bright glitch"}  # type: ignore[index]
    assert store.settings()["calibrate"]["paused"] is True
    assert store.settings()["search"]["defaults"]["priority"] == 3
    assert [n for _, _, _, n in store.finished_per_minute(0)] == [1, 1, 1]
    results = Results(store)
    assert _ids(results, tags=["pulsar"]) == ["done-1", "done-2"]
    assert _ids(results, text="glitch") == ["done-1"]
    assert _ids(results, text="signal") == ["done-2"]
    # done-3's words were still to be indexed: the new code indexes them.
    assert _ids(results, text="beam") == ["done-2", "done-3"]
    assert _ids(results, tags=["beam"], text="beam") == ["done-3"]

    # And the file works on: a claim (highest priority first), an outcome, an expiry.
    buckets = Buckets(store, clock=lambda: 1_800_001_000.0)
    (taken,) = buckets.withdraw(Withdraw(pipelines=["search"]))
    assert taken["id"] == "queue-2" and taken["attempt"] == 1
    phase = {"phase": "waxing crescent"}
    buckets.complete(Outcome(id="queue-2", attempt=1, status="success", results=phase))
    assert buckets.expire() == 1, "run-1's lease ran out at 1800000600"
    assert store.work.get("run-1")["status"] != "running"  # type: ignore[index]
    assert _ids(results, text="crescent") == ["queue-2"]
    assert ("search", "success", 2) in store.results.tally()
    assert store.work.count({}) + store.results.count({}) == 7
    store.close()

    store = SqliteStore(f"sqlite:///{path}")  # and opens again as it is
    assert _ids(Results(store), text="crescent") == ["queue-2"]
    store.close()
    assert _version(path) == len(sqlite_migrations.MIGRATIONS)


def test_a_new_file_starts_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteStore(f"sqlite:///{path}").close()
    assert _version(path) == len(sqlite_migrations.MIGRATIONS) >= 1
    adopted = tmp_path / "old.db"
    db = sqlite3.connect(adopted, isolation_level=None)
    db.executescript(UNVERSIONED.read_text())
    db.close()
    SqliteStore(f"sqlite:///{adopted}").close()
    names = "SELECT type, name FROM sqlite_master ORDER BY name"
    assert _raw(path, names) == _raw(adopted, names), "the same tables, indexes, triggers"


def test_each_step_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "steps.db"
    SqliteStore(f"sqlite:///{path}").close()  # at the current version
    db = sqlite3.connect(path, isolation_level=None)
    # A marker with no result: the first step deletes such markers when it runs.
    db.execute("INSERT INTO results_unindexed (rowid) VALUES (99)")
    db.close()
    real = len(sqlite_migrations.MIGRATIONS)
    monkeypatch.setattr(sqlite_migrations, "MIGRATIONS", [*sqlite_migrations.MIGRATIONS, PROBE])

    SqliteStore(f"sqlite:///{path}").close()  # runs the new step only
    assert _version(path) == real + 1
    assert _raw(path, "SELECT n FROM probe") == [(1,)]
    assert _raw(path, "SELECT rowid FROM results_unindexed") == [(99,)], "step 1 did not run"
    for _ in range(2):
        store = SqliteStore(f"sqlite:///{path}")
        store.close()
    assert _raw(path, "SELECT n FROM probe") == [(1,)], "no step ran again"
    assert _version(path) == real + 1


def test_a_failing_step_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "failing.db"
    SqliteStore(f"sqlite:///{path}").close()
    real = len(sqlite_migrations.MIGRATIONS)
    broken = "CREATE TABLE probe_too (n INTEGER); INSERT INTO nowhere VALUES (1);"
    monkeypatch.setattr(sqlite_migrations, "MIGRATIONS",
                        [*sqlite_migrations.MIGRATIONS, PROBE, broken])  # fmt: skip
    with pytest.raises(StoreUnavailable, match=f"schema version {real + 2}.*nowhere"):
        SqliteStore(f"sqlite:///{path}")
    assert _version(path) == real
    assert _raw(path, "SELECT name FROM sqlite_master WHERE name LIKE 'probe%'") == [], (
        "the step before the failing one, and the failing one's start, were undone")


def test_a_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store = SqliteStore(f"sqlite:///{path}")
    store.work.insert([{"id": "w", "pipeline": "p", "status": "queued", "priority": 3,
                        "creation": 1.0, "attempt": 0}])  # fmt: skip
    store.close()
    known = len(sqlite_migrations.MIGRATIONS)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA user_version = {known + 1}")
    db.close()
    with pytest.raises(ConfigurationError) as refused:
        SqliteStore(f"sqlite:///{path}")
    assert f"schema version {known + 1}" in refused.value.message
    assert f"(version {known})" in refused.value.message
    assert refused.value.field == "store"
    assert _version(path) == known + 1 and _raw(path, "SELECT id FROM work") == [("w",)]
