"""The SQLite schema: one JSON document per work plus the columns that indexes need.

The bucket (``work``) and the results (``results``) share a shape. Indexed columns are
copied out of the document on every write; everything else is read with
``json_extract``. Counts per pipeline and status are kept in tally tables by the store
(``workflow.store.sqlite_tally``), so dashboards never scan a million rows.
"""

from __future__ import annotations

from typing import Any

#: Indexed columns per table, and how each is read from a document.
WORK_COLUMNS = ("pipeline", "status", "priority", "creation", "attempt", "expires", "not_before")
RESULT_COLUMNS = ("pipeline", "status", "priority", "creation", "start", "stop", "attempt",
                  "site", "user")  # fmt: skip


def column_values(doc: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """The indexed column values of ``doc``, in ``columns`` order."""
    values = []
    for name in columns:
        if name == "expires":
            lease = doc.get("lease")
            values.append(lease.get("expires") if lease else None)
        else:
            values.append(doc.get(name))
    return values


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
