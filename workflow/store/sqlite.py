"""The embedded SQLite backend: ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db``.

The store's verbs: claims, the move of a finished work to the results, lease expiry,
pipeline settings and the background indexing of finished works' words. Connections
and write transactions are ``workflow.store.sqlite_connections``; one table's
documents, queries and compare-and-set updates are ``workflow.store.sqlite_collection``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from workflow.errors import DuplicateWork
from workflow.store.base import Claim, Doc, Following, Query, claim_order, claimed
from workflow.store.sqlite_collection import SqliteCollection
from workflow.store.sqlite_connections import (
    BUSY_MS,
    MIN_SQLITE,
    READ_CACHE_KIB,
    READERS,
    SYNCHRONOUS,
    SqliteConnections,
    default_path,
)
from workflow.store.sqlite_docs import SqliteDocuments
from workflow.store.sqlite_logs import SqliteLogs
from workflow.store.sqlite_migrations import migrate
from workflow.store.sqlite_outbox import SqliteOutbox, write_notes
from workflow.store.sqlite_schema import (
    READ,
    RESULT_COLUMNS,
    WORK_COLUMNS,
    doc_text,
    dumps,
    read_doc,
)

#: The store, and the settings of its connections, which were defined here before.
__all__ = ["BUSY_MS", "MIN_SQLITE", "READERS", "READ_CACHE_KIB", "SYNCHRONOUS", "SqliteStore",
           "default_path"]  # fmt: skip


class SqliteStore(SqliteConnections):
    """The SQLite ``Store`` (see ``workflow.store.base.Store``).

    Args:
        url: The file, as ``SqliteConnections`` reads it.

    Raises:
        ConfigurationError: an unusable URL or SQLite, or a file whose schema is newer
            than this code (``workflow.store.sqlite_migrations``).
        StoreUnavailable: the file cannot be opened or brought to the current schema.
    """

    concurrent_reads = True  # one read connection per thread, WAL snapshots
    shared = False  # one server per file

    def __init__(self, url: str):
        super().__init__(url)
        try:
            migrate(self._writer, self.path)
        except BaseException:
            self.close()
            raise
        self.work = SqliteCollection(self, "work", WORK_COLUMNS)
        self.results = SqliteCollection(self, "results", RESULT_COLUMNS)
        self.logs = SqliteLogs(self)
        self.documents = SqliteDocuments(self)
        self.outbox = SqliteOutbox(self)

    def follow(self, on_claimable: Callable[[float | None], None],
               on_finished: Callable[[str], None], on_lost: Callable[[], None]
               ) -> Following | None:  # fmt: skip
        """None: one server per file, whose own verbs announce every change."""
        return None

    def find_anywhere(self, db: sqlite3.Connection, id: str) -> Doc | None:
        """The work with that id in the bucket or the results, read inside ``db``."""
        for table in ("work", "results"):
            row = db.execute(f"SELECT {READ} FROM {table} WHERE id = ?", (id,)).fetchone()
            if row:
                return read_doc(*row)
        return None

    def claim(self, pipelines: list[str], query: Query, claim: Claim, limit: int = 1
              ) -> list[Doc]:  # fmt: skip
        where, params = self.work.expected(query) if query else ("1", [])
        sql = (
            f"SELECT {READ} FROM work WHERE status = 'queued' "
            "AND pipeline = ? AND (not_before IS NULL OR not_before <= ?) "
            f"AND {where} ORDER BY priority DESC, creation, id LIMIT ?"
        )
        with self.write() as db:
            # One ordered index walk per pipeline, merged: each walk stops at `limit`.
            found: list[Doc] = []
            for pipeline in pipelines:
                rows = db.execute(sql, [pipeline, claim.now, *params, limit])
                found.extend(read_doc(*row) for row in rows)
            taken = [claimed(doc, claim) for doc in sorted(found, key=claim_order)[:limit]]
            for doc in taken:
                self.work.swap_in(db, doc["id"], {"status": "queued"}, doc)
        return taken

    def finish(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
               ) -> Doc:  # fmt: skip
        with self.write(alone=True) as db:
            # The compare-and-set is the guarded delete: it takes the work out of the
            # bucket or changes nothing. Should the results refuse the work, the row
            # goes back as it was, so that inside a batch (no savepoint here) the
            # failure still leaves nothing half done.
            taken = self.work.take(db, id, expect)
            try:
                self.results.insert_row(db, doc)
            except BaseException as exc:
                if db.in_transaction:  # (else SQLite rolled it all back: a full disk)
                    self.work.put_back(db, taken)
                if isinstance(exc, sqlite3.IntegrityError):
                    raise DuplicateWork(f"work {id} is in the results already",
                                        field="id", id=id) from exc  # fmt: skip
                raise
            write_notes(db, notes)  # (an insert that skips known keys cannot fail halfway)
        return doc

    def index_text(self, chunk: int = 2000) -> int:
        """Index the words of finished works that are not indexed yet; return how many.

        A finished work only notes that its words are to be indexed: indexing them in
        the transaction that finishes it costs more than the rest of that transaction
        (SQLite's text index writes a segment per transaction). The server indexes in
        the background (``tidy``), and every text search first indexes what is left,
        so a search always sees every finished work.
        """
        if not self.rows("SELECT 1 FROM results_unindexed LIMIT 1"):
            return 0
        done = 0
        while True:
            with self.write() as db:
                rows = db.execute(
                    "SELECT u.rowid, r.doc FROM results_unindexed u "
                    "LEFT JOIN results r ON r.rowid = u.rowid ORDER BY u.rowid LIMIT ?",
                    (chunk,),
                ).fetchall()
                if not rows:
                    return done
                texts = [(rowid, doc_text(doc)) for rowid, doc in rows if doc is not None]
                db.executemany("INSERT INTO results_text (rowid, body) VALUES (?, ?)", texts)
                # The lowest rowids, all read above: nothing else writes meanwhile.
                db.execute("DELETE FROM results_unindexed WHERE rowid <= ?", (rows[-1][0],))
                done += len(texts)

    def finished_per_minute(self, since: float) -> list[tuple[int, str, str, int]]:
        rows = self.rows("SELECT minute, pipeline, status, n FROM results_minutes "
                         "WHERE minute >= ? ORDER BY minute", (int(since // 60 * 60),))  # fmt: skip
        return [(int(m), str(p), str(s), int(n)) for m, p, s, n in rows]

    def tidy(self) -> None:
        """Index what finished since the last call (see ``index_text``)."""
        self.index_text()

    def expired(self, now: float, limit: int = 100) -> list[Doc]:
        rows = self.rows(f"SELECT {READ} FROM work WHERE status = 'running' AND expires < ? "
                         "ORDER BY expires LIMIT ?", (now, limit))  # fmt: skip
        return [read_doc(*row) for row in rows]

    def settings(self) -> dict[str, dict[str, Any]]:
        rows = self.rows("SELECT name, settings FROM pipelines")
        return {name: orjson.loads(text) for name, text in rows}

    def put_settings(self, pipeline: str, settings: dict[str, Any]) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO pipelines VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET settings = excluded.settings",
                (pipeline, dumps(settings)),
            )

    def runners(self) -> list[Doc]:
        return [orjson.loads(text) for (text,) in self.rows("SELECT doc FROM runners ORDER BY id")]

    def put_runner(self, doc: Doc) -> None:
        with self.write() as db:
            _put_runner(db, doc)

    def touch_runner(self, id: str, seen: float, *, done: int = 0, failed: int = 0,
                     stopped: float | None = None, new: Doc | None = None) -> None:  # fmt: skip
        with self.write() as db:
            row = db.execute("SELECT doc FROM runners WHERE id = ?", (id,)).fetchone()
            if row is None and new is None:
                return
            doc = orjson.loads(row[0]) if row is not None else dict(new or {})
            doc["last_seen"] = max(float(doc.get("last_seen") or 0.0), seen)
            doc["done"] = int(doc.get("done") or 0) + done
            doc["failed"] = int(doc.get("failed") or 0) + failed
            if stopped is not None:
                doc["stopped"] = stopped
            _put_runner(db, doc)

    def forget_runners(self, before: float) -> int:
        with self.write() as db:
            return db.execute("DELETE FROM runners WHERE seen < ?", (before,)).rowcount


def _put_runner(db: sqlite3.Connection, doc: Doc) -> None:
    db.execute("INSERT INTO runners VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE "
               "SET seen = excluded.seen, doc = excluded.doc",
               (doc["id"], float(doc.get("last_seen") or 0.0), dumps(doc)))  # fmt: skip
