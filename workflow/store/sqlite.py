"""The embedded SQLite backend: ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db``.

Writes go through one connection under a lock, each in a ``BEGIN IMMEDIATE``
transaction, so a claim is one atomic step even with many server threads; other
processes on the same file wait on SQLite's busy timeout. Reads take a connection from
a small pool for the length of one read and, in WAL mode, never block writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from workflow.errors import (
    ConfigurationError,
    DuplicateWork,
    NotFound,
    StoreUnavailable,
    TransitionConflict,
    WouldWait,
)
from workflow.store.base import Claim, Doc, Query, claim_order, claimed
from workflow.store.sqlite_collection import SqliteCollection, dumps
from workflow.store.sqlite_schema import (
    READ,
    RESULT_COLUMNS,
    WORK_COLUMNS,
    integrity_error,
    prepare,
    read_doc,
)
from workflow.store.sqlite_tally import Tallies
from workflow.store.text import text_of

MIN_SQLITE = (3, 35, 0)  # RETURNING
SYNCHRONOUS = {"off", "normal", "full", "extra"}
#: Milliseconds a write waits for another process's write lock.
BUSY_MS = 30_000
#: Page cache of each read connection, in KiB (SQLite's default is 2,000): 20 pages,
#: what SQLite allocates in one piece when a connection's cache is made. A reader's
#: cache is emptied whenever another connection has written since its last read, which
#: on a busy server is before nearly every read; pages beyond those 20 would each be
#: allocated and freed again and again, leaving the heap fragmented and growing
#: (``memory_soak``). Within one read, 20 pages keep a B-tree's upper levels; the rest
#: come from the operating system's file cache.
READ_CACHE_KIB = 80
#: Read connections kept open between reads. Each holds its page cache and its prepared
#: statements (about 400 KiB once warm), so the pool is kept small and busy: it is
#: warm within seconds, and the server's memory stays flat (``memory_soak``). More
#: reads at once than this open a connection each, closed when the read ends.
READERS = 8


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, unless SQLite already did: it does so by itself
    on some errors (a full disk, an I/O error), and a second ROLLBACK would fail."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _text(doc: str) -> str:
    return text_of(orjson.loads(doc))



class SqliteStore:
    """The SQLite ``Store`` (see ``workflow.store.base.Store``)."""

    concurrent_reads = True  # one read connection per thread, WAL snapshots

    def __init__(self, url: str):
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise ConfigurationError(
                f"SQLite {sqlite3.sqlite_version} is too old; workflow needs 3.35 or newer"
            )
        self.url = url
        self.path, self.synchronous = _parse(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._idle: list[sqlite3.Connection] = []  # read connections between reads
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        self.tallies = Tallies()  # the write transaction's count changes
        # Statement journals (a statement with triggers inside a transaction writes
        # one) in memory, not in temporary files: a write costs half as much.
        self._writer.execute("PRAGMA temp_store = MEMORY")
        prepare(self._writer)
        self.work = SqliteCollection(self, "work", WORK_COLUMNS)
        self.results = SqliteCollection(self, "results", RESULT_COLUMNS)

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                 check_same_thread=False)  # fmt: skip
            # The results triggers index each work's text through this function.
            db.create_function("workflow_text", 1, _text, deterministic=True)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        return db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read connection for the block; read every row inside it."""
        with self._readers_lock:  # not the writer's lock: a batch holding it may read
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = self._connect()
            db.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
        try:
            yield db
        finally:
            with self._readers_lock:
                keep = len(self._idle) < READERS and not self._closed
                if keep:
                    self._idle.append(db)
            if not keep:
                db.close()

    def rows(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of one read, on a pooled read connection."""
        with self.reading() as db:
            return db.execute(sql, params).fetchall()

    @contextmanager
    def promptly(self) -> Iterator[bool]:
        # This thread's writes neither queue behind another thread's nor wait for
        # another process's lock: they raise WouldWait at BEGIN, before any change.
        self._local.prompt = True
        try:
            yield True
        finally:
            self._local.prompt = False

    def writing(self) -> bool:
        """True in a thread that holds the write transaction."""
        return bool(getattr(self._local, "depth", 0))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run the writes inside in one transaction; each still succeeds or fails alone."""
        with self.write():
            yield

    @contextmanager
    def write(self, alone: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; rolled back on any error.

        Inside ``batch()`` (the same thread already holds the transaction) it is a
        savepoint instead, so a failing operation undoes only itself; with ``alone`` it
        is neither, for operations that cannot fail halfway: a single statement, or
        checks first and then statements that cannot conflict. (Savepoints are not
        free: each one also makes SQLite flush the full-text index.)
        """
        depth = getattr(self._local, "depth", 0)
        if depth:
            if alone:
                yield self._writer
            else:
                yield from self._savepoint(depth)
            return
        prompt = getattr(self._local, "prompt", False)
        if not self._lock.acquire(blocking=not prompt):
            raise WouldWait("another write is in progress")
        try:
            self._local.depth = 1
            yield from self._transaction(prompt)
        finally:
            self._local.depth = 0
            self._lock.release()

    def _savepoint(self, depth: int) -> Iterator[sqlite3.Connection]:
        db, name = self._writer, f"operation{depth}"
        db.execute(f"SAVEPOINT {name}")
        self.tallies.savepoint()
        self._local.depth = depth + 1
        try:
            yield db
        except BaseException as exc:
            if db.in_transaction:  # (else SQLite rolled it all back itself: a full disk)
                db.execute(f"ROLLBACK TO {name}")
                db.execute(f"RELEASE {name}")
            self.tallies.rollback()
            if isinstance(exc, sqlite3.IntegrityError):
                raise integrity_error(exc) from exc
            raise
        else:
            db.execute(f"RELEASE {name}")
            self.tallies.release()
        finally:
            self._local.depth = depth

    def _transaction(self, prompt: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._writer
        try:
            if prompt:  # another process's write lock: no waiting for it here
                db.execute("PRAGMA busy_timeout = 0")
            try:
                db.execute("BEGIN IMMEDIATE")
                self.tallies.begin()
            finally:
                if prompt:
                    db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        except sqlite3.OperationalError as exc:
            if prompt and exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise WouldWait(f"{self.path} is locked by another process") from exc
            raise StoreUnavailable(f"cannot write {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot write {self.path}: {exc}") from exc
        try:
            yield db
        except sqlite3.IntegrityError as exc:
            _rollback(db)
            raise integrity_error(exc) from exc
        except sqlite3.Error as exc:
            _rollback(db)
            raise StoreUnavailable(f"cannot write {self.path}: {exc}") from exc
        except BaseException:
            _rollback(db)
            raise
        try:
            self.tallies.flush(db)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(db)
            raise StoreUnavailable(f"cannot commit to {self.path}: {exc}") from exc

    def find_anywhere(self, db: sqlite3.Connection, id: str) -> Doc | None:
        """The work with that id in the bucket or the results, read inside ``db``."""
        for table in ("work", "results"):
            row = db.execute(f"SELECT {READ} FROM {table} WHERE id = ?", (id,)).fetchone()
            if row:
                return read_doc(*row)
        return None

    def conflict(self, db: sqlite3.Connection, table: str, id: str, expect: dict[str, Any]
                 ) -> NotFound | TransitionConflict:  # fmt: skip
        """The error for a compare-and-set on ``id`` that matched nothing."""
        row = db.execute(f"SELECT status, attempt FROM {table} WHERE id = ?", (id,)).fetchone()
        if row is None:
            return NotFound(f"no work {id} in the {'bucket' if table == 'work' else table}",
                            field="id", id=id)  # fmt: skip
        return TransitionConflict(
            f"work {id} is {row[0]} at attempt {row[1]}, not as expected {expect}",
            field="attempt" if "attempt" in expect else "status",
            id=id, status=row[0], attempt=row[1], expected=expect,
        )

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

    def finish(self, id: str, expect: dict[str, Any], doc: Doc) -> Doc:
        where, params = self.work.expected(expect)
        with self.write(alone=True) as db:
            # Check, insert, delete: the first two change nothing when they fail, and
            # the delete cannot fail once the check passed (this transaction holds the
            # write lock).
            found = db.execute(f"SELECT pipeline, status FROM work WHERE id = ? AND {where}",
                               [id, *params]).fetchone()  # fmt: skip
            if found is None:
                raise self.conflict(db, "work", id, expect)
            try:
                self.results.insert_row(db, doc)
            except sqlite3.IntegrityError as exc:
                raise DuplicateWork(f"work {id} is in the results already",
                                    field="id", id=id) from exc  # fmt: skip
            db.execute("DELETE FROM work WHERE id = ?", (id,))
            self.tallies.add(("work", *found), -1)
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
                texts = [(rowid, _text(doc)) for rowid, doc in rows if doc is not None]
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

    def close(self) -> None:
        with self._lock, self._readers_lock:
            self._closed = True  # a read still running closes its connection itself
            for db in [*self._idle, self._writer]:
                db.close()
            self._idle.clear()


def _parse(url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigurationError(f"not a sqlite URL: {url}", field="store")
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    path = Path(raw).expanduser() if raw else default_path()
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    synchronous = options.pop("synchronous", "normal").lower()
    if synchronous not in SYNCHRONOUS or options:
        raise ConfigurationError(
            f"unknown sqlite URL option in {url}: only synchronous=off|normal|full|extra",
            field="store",
        )
    return path, synchronous


def default_path() -> Path:
    """``$XDG_DATA_HOME/workflow/workflow.db`` (``~/.local/share/workflow/workflow.db``)."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "workflow" / "workflow.db"
