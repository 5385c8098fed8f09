"""The connections to one SQLite file, and its write transactions.

Writes go through one connection under a lock, each in a ``BEGIN IMMEDIATE``
transaction, so a claim is one atomic step even with many server threads; other
processes on the same file wait on SQLite's busy timeout. Reads take a connection from
a small pool for the length of one read and, in WAL mode, never block writes. The
store's verbs (``workflow.store.sqlite``) are written over this.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from workflow.errors import ConfigurationError, StoreUnavailable, WouldWait
from workflow.store.sqlite_schema import doc_text, integrity_error
from workflow.store.sqlite_tally import Tallies

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


class SqliteConnections:
    """The writer connection under its lock, the pool of read connections, and the
    write transactions with the count changes they carry (``tallies``).

    Args:
        url: ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db``, with an
            optional ``?synchronous=off|normal|full|extra``.

    Raises:
        ConfigurationError: SQLite older than 3.35, or a URL this backend cannot read.
        StoreUnavailable: the file cannot be opened.
    """

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

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                 check_same_thread=False)  # fmt: skip
            # The results triggers index each work's text through this function.
            db.create_function("workflow_text", 1, doc_text, deterministic=True)
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

    def rows_here(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of one read; inside a write transaction (a batch), read through it:
        it sees the batch's own changes, and costs no second snapshot."""
        if self.writing():
            return self._writer.execute(sql, params).fetchall()
        return self.rows(sql, params)

    @contextmanager
    def promptly(self) -> Iterator[bool]:
        """Writes inside that would wait raise ``WouldWait`` instead (see ``Store``)."""
        # This thread's writes neither queue behind another thread's nor wait for
        # another process's lock: they raise WouldWait at BEGIN, before any change.
        before = getattr(self._local, "prompt", False)  # it may nest
        self._local.prompt = True
        try:
            yield True
        finally:
            self._local.prompt = before

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
        is neither, for operations that cannot fail halfway: a single statement, checks
        first and then statements that cannot conflict, or statements that undo what
        came before them when they fail (``finish``). (Savepoints are not free: each
        one also makes SQLite flush the full-text index.)
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

    def close(self) -> None:
        """Close every connection; a read still running closes its own when it ends."""
        with self._lock, self._readers_lock:
            self._closed = True
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
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "workflow" / "workflow.db"
