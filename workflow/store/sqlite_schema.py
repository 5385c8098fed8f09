"""The SQLite schema: one JSON document per work plus the columns that indexes need.

The bucket (``work``) and the results (``results``) share a shape. Indexed columns are
copied out of the document on every write; everything else is read with
``json_extract``. Counts per pipeline and status are kept in tally tables by the store
(``workflow.store.sqlite_tally``), so dashboards never scan a million rows.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import orjson

from workflow.errors import DuplicateWork, InvalidWork, WorkflowError
from workflow.store.base import UNREADABLE
from workflow.store.text import text_of

#: Indexed columns per table, and how each is read from a document.
WORK_COLUMNS = ("pipeline", "status", "priority", "creation", "attempt", "expires", "not_before")
#: What a read of whole documents selects (see ``read_doc``).
READ = "doc, id, pipeline, status, priority, attempt"
RESULT_COLUMNS = ("pipeline", "status", "priority", "creation", "start", "stop", "attempt",
                  "site", "user")  # fmt: skip


def column_values(doc: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """The indexed column values of ``doc``, in ``columns`` order."""
    values = []
    for name in columns:
        if name == "expires":
            lease = doc.get("lease")
            values.append(lease.get("expires") if lease else None)
        elif name == "creation":
            # A creation stored as null (a non-finite number, before bodies were
            # checked) sorts as the oldest, as the claim order puts it (claim_order).
            values.append(_finite(doc.get(name)))
        else:
            values.append(doc.get(name))
    return values


def _finite(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0


def read_doc(text: str, id: str, pipeline: str, status: str, priority: int, attempt: int
             ) -> dict[str, Any]:  # fmt: skip
    """A stored document (the columns of ``READ``), or, when it cannot be read (nested
    past what the JSON reader takes, written by hand), what its columns say with the
    reason under ``UNREADABLE``: one such row never fails a read of many, and the
    withdraw sets such a work aside instead of failing on it."""
    try:
        return orjson.loads(text)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError as exc:
        return {"id": id, "pipeline": pipeline, "status": status, "priority": priority,
                "attempt": attempt, "history": [],
                UNREADABLE: f"the stored document cannot be read: {exc}"}  # fmt: skip


def doc_text(doc: str) -> str:
    """The words of a stored document that text search finds it by (``text_of``)."""
    return text_of(orjson.loads(doc))


def integrity_error(exc: sqlite3.IntegrityError) -> WorkflowError:
    """The domain error for a constraint SQLite refused: a taken id is a duplicate; a
    missing or wrong value names its column."""
    message = str(exc)
    if "UNIQUE" in message or "PRIMARY KEY" in message:
        return DuplicateWork(f"a work with that id exists already ({message})", field="id")
    column = message.rsplit(".", 1)[-1] if "." in message else "body"
    return InvalidWork(f"{column}: the store refused this value ({message})", field=column)


def _tally(table: str) -> str:
    # Written by the store once per transaction (``workflow.store.sqlite_tally``); the
    # triggers that kept it before are dropped from files that still have them.
    return f"""
CREATE TABLE IF NOT EXISTS {table}_tally (
    pipeline TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (pipeline, status)) WITHOUT ROWID;
DROP TRIGGER IF EXISTS {table}_tally_insert;
DROP TRIGGER IF EXISTS {table}_tally_delete;
DROP TRIGGER IF EXISTS {table}_tally_update;
"""


SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS work (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    creation REAL NOT NULL,
    attempt INTEGER NOT NULL,
    expires REAL,
    not_before REAL,
    doc TEXT NOT NULL
);
-- The claim walks this index in withdraw order, so its cost does not grow with the
-- bucket: only queued rows are in it, and a LIMIT stops the walk at the first match.
CREATE INDEX IF NOT EXISTS work_claim
    ON work (pipeline, priority DESC, creation, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS work_expiry ON work (expires) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS work_creation ON work (creation);

CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER,
    creation REAL,
    start REAL,
    stop REAL,
    attempt INTEGER,
    site TEXT,
    user TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_creation ON results (creation DESC, id DESC);
CREATE INDEX IF NOT EXISTS results_pipeline ON results (pipeline, creation DESC);
CREATE INDEX IF NOT EXISTS results_status ON results (status, creation DESC);
CREATE INDEX IF NOT EXISTS results_pipeline_status ON results (pipeline, status, creation DESC);
CREATE INDEX IF NOT EXISTS results_stop ON results (stop DESC);
CREATE INDEX IF NOT EXISTS results_site ON results (site, creation DESC);
CREATE INDEX IF NOT EXISTS results_user ON results (user, creation DESC);
-- Words of parameters, results, tags and error messages, for free-text search; each row
-- shares the rowid of its work, so a match joins back without reading the id.
CREATE VIRTUAL TABLE IF NOT EXISTS results_text USING fts5 (body);
-- Inserts are indexed later, in bulk, by SqliteStore.index_text: a finished work's rowid
-- waits here until then (indexing in the finishing transaction would cost more than
-- the rest of it).
DROP TRIGGER IF EXISTS results_text_insert;
CREATE TABLE IF NOT EXISTS results_unindexed (rowid INTEGER PRIMARY KEY);
-- A deleted result takes everything keyed by its rowid with it, in its own transaction:
-- SQLite numbers a new row one past the largest, so deleting the newest result hands
-- its rowid to the next one, which a marker left behind would refuse (issue 15).
CREATE TRIGGER IF NOT EXISTS results_unindexed_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_unindexed WHERE rowid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS results_text_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_text WHERE rowid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS results_text_update AFTER UPDATE OF doc ON results BEGIN
    UPDATE results_text SET body = workflow_text(new.doc) WHERE rowid = new.rowid;
END;
-- One row per tag of a finished work: a tag filter finds its works without parsing
-- every document, in creation order.
CREATE TABLE IF NOT EXISTS results_tags (
    tag TEXT NOT NULL, creation REAL, id TEXT NOT NULL,
    PRIMARY KEY (tag, creation, id)) WITHOUT ROWID;
-- Inserts add their tags from SqliteStore, which has the document parsed already.
DROP TRIGGER IF EXISTS results_tags_insert;
CREATE TRIGGER IF NOT EXISTS results_tags_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_tags WHERE id = old.id AND creation IS old.creation
    AND tag IN (SELECT value FROM json_each(old.doc, '$.tags'));
END;
CREATE TRIGGER IF NOT EXISTS results_tags_update AFTER UPDATE OF doc ON results BEGIN
    DELETE FROM results_tags WHERE id = old.id AND creation IS old.creation
    AND tag IN (SELECT value FROM json_each(old.doc, '$.tags'));
    INSERT OR IGNORE INTO results_tags
    SELECT value, new.creation, new.id FROM json_each(new.doc, '$.tags') WHERE value IS NOT NULL;
END;

-- Works finished per minute, pipeline and status, for the dashboard's chart; counted with
-- each finished work, never decremented (it is a record of throughput).
CREATE TABLE IF NOT EXISTS results_minutes (
    minute INTEGER NOT NULL, pipeline TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (minute, pipeline, status)) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS pipelines (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
"""
    + _tally("work")
    + _tally("results")
)

#: Markers of results deleted before their words were indexed, which files written before
#: ``results_unindexed_delete`` existed may hold.
_DANGLING = ("SELECT rowid FROM results_unindexed u "
             "WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.rowid = u.rowid)")  # fmt: skip


def prepare(db: sqlite3.Connection) -> None:
    """Create what is missing of the schema in the file open on ``db``, and drop the
    markers that results deleted before this schema's delete trigger left behind.

    Args:
        db: A connection outside any transaction.
    """
    db.executescript(SCHEMA)
    # Only a file that needs it is written: a statement that writes waits for another
    # process's write lock, and most opens find nothing to repair.
    if db.execute(f"{_DANGLING} LIMIT 1").fetchone() is not None:
        db.execute(f"DELETE FROM results_unindexed WHERE rowid IN ({_DANGLING})")
