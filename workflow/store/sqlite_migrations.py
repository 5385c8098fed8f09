"""Versioned changes to the SQLite schema, numbered by ``PRAGMA user_version``.

``MIGRATIONS`` lists the steps in order; a file at version N has had the first N.
Opening a file runs every step above its version, and sets the version, in one
transaction: a step that fails leaves the file as it was. Step 1 is the schema as it
stood before files were versioned, written so that it also completes any file made
before then (version 0, with some or all of the tables): ``IF NOT EXISTS`` everywhere,
and the triggers and markers that older files still have dropped. Later steps are
plain changes, each run once. A file newer than this code is refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workflow.errors import ConfigurationError, StoreUnavailable

# Step 1: the schema exactly as files had it before they were versioned. A released
# step never changes (files at its version have it as it was): a change is a new step.


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


BASELINE = (
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

#: The steps, in order: step N takes a file from version N - 1 to N.
MIGRATIONS: list[str] = [
    BASELINE + f"DELETE FROM results_unindexed WHERE rowid IN ({_DANGLING});\n",
    # 2: the runners on record (``workflow.buckets.runners``), each a document; ``seen``
    # is its last_seen, by which the ones gone for a day are forgotten.
    "CREATE TABLE IF NOT EXISTS runners (\n"
    "    id TEXT PRIMARY KEY, seen REAL NOT NULL, doc TEXT NOT NULL);\n"
    "CREATE INDEX IF NOT EXISTS runners_seen ON runners (seen);\n"
    # The works each runner holds, found without reading the bucket: only works under
    # a lease are in it.
    """CREATE INDEX IF NOT EXISTS work_runner ON work (json_extract(doc, '$."lease"."runner"'))
    WHERE json_extract(doc, '$."lease"."runner"') IS NOT NULL;
""",
    # 3: the attempts' logs (``workflow.store.sqlite_logs``), the end of each as a
    # document; ``size`` is the bytes written so far, the compare-and-set's field.
    "CREATE TABLE IF NOT EXISTS logs (\n"
    "    work TEXT NOT NULL, attempt INTEGER NOT NULL, size INTEGER NOT NULL,\n"
    "    doc TEXT NOT NULL, PRIMARY KEY (work, attempt));\n",
    # 4: pipeline runs, configurations and schedules (``workflow.store.sqlite_docs``).
    "CREATE TABLE IF NOT EXISTS documents (\n"
    "    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT,\n"
    "    name TEXT, creation REAL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));\n"
    "CREATE INDEX IF NOT EXISTS documents_status ON documents (kind, status, creation);\n",
    # 5: the messages to deliver (``workflow.store.sqlite_outbox``), in the order written.
    "CREATE TABLE IF NOT EXISTS outbox (\n"
    "    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,\n"
    "    target TEXT NOT NULL, state TEXT NOT NULL, work TEXT, version INTEGER NOT NULL,\n"
    "    created REAL NOT NULL, due REAL NOT NULL, doc TEXT NOT NULL);\n"
    "CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, target, seq);\n"
    "CREATE INDEX IF NOT EXISTS outbox_work ON outbox (work, seq) WHERE work IS NOT NULL;\n",
]


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the file open on ``db`` to the current version; return that version.

    A file at the current version is only read: opening it takes no write lock.

    Args:
        db: A connection outside any transaction.
        path: The file, for messages.

    Raises:
        ConfigurationError: the file is newer than this code.
        StoreUnavailable: a step failed (the file is left as it was).
    """
    current = len(MIGRATIONS)
    try:
        if _version(db, path) == current:
            return current
        # Another process may be migrating the same file: take the write lock, then
        # read the version again.
        db.execute("BEGIN IMMEDIATE")
        try:
            version = _version(db, path)
            for step in MIGRATIONS[version:]:
                for statement in _statements(step):
                    db.execute(statement)
            if version < current:
                db.execute(f"PRAGMA user_version = {current}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot bring {path} to schema version {current}: {exc}"
                               ) from exc  # fmt: skip
    return current


def _version(db: sqlite3.Connection, path: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise ConfigurationError(
            f"{path} has schema version {version}, newer than this workflow knows "
            f"(version {len(MIGRATIONS)}): use a newer workflow", field="store")
    return version


def _statements(script: str) -> list[str]:
    """The statements of ``script``, to run one by one (``executescript`` would first
    commit the migration's transaction)."""
    statements, pending = [], ""
    for piece in script.split(";"):  # a semicolon may end a statement, or be inside one
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):  # unfinished: SQLite will say what is wrong with it
        statements.append(pending)
    return statements
