"""Counts per pipeline and status, and finished works per minute, kept by the SQLite store.

Every insert, delete and status or pipeline change of a work adds one to a count and
takes one from another. The store notes these changes in memory while its write
transaction runs and writes their sums just before the commit, in the same transaction:
one upsert per count that changed, not one per work. (SQLite triggers did this before;
a trigger makes each statement keep a journal of the pages it touches, which cost about
as much as the rest of a work's bookkeeping.) Savepoints nest: changes noted inside one
that rolls back are dropped with it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

#: The upsert of each kind of count; the key of a count is its kind, then the columns.
UPSERTS = {
    "work": "INSERT INTO work_tally VALUES (?, ?, ?) "
            "ON CONFLICT (pipeline, status) DO UPDATE SET n = n + excluded.n",
    "results": "INSERT INTO results_tally VALUES (?, ?, ?) "
               "ON CONFLICT (pipeline, status) DO UPDATE SET n = n + excluded.n",
    "minutes": "INSERT INTO results_minutes VALUES (?, ?, ?, ?) "
               "ON CONFLICT (minute, pipeline, status) DO UPDATE SET n = n + excluded.n",
}  # fmt: skip


class Tallies:
    """The count changes of the open write transaction, one layer per savepoint.

    Used only by the thread that holds the store's write lock.
    """

    def __init__(self) -> None:
        self._layers: list[Counter[tuple[Any, ...]]] = [Counter()]

    def add(self, key: tuple[Any, ...], n: int = 1) -> None:
        """Change the count ``key`` (``("work", pipeline, status)``, ``("results", ...)``,
        or ``("minutes", minute, pipeline, status)``) by ``n``."""
        self._layers[-1][key] += n

    def moved(self, table: str, old: tuple[str, str], new: tuple[str, str]) -> None:
        """A work of ``table`` went from (pipeline, status) ``old`` to ``new``."""
        if old != new:
            self.add((table, *old), -1)
            self.add((table, *new))

    def begin(self) -> None:
        """A transaction starts: nothing noted yet."""
        self._layers = [Counter()]

    def savepoint(self) -> None:
        self._layers.append(Counter())

    def release(self) -> None:
        """The innermost savepoint succeeded: its changes join the enclosing layer."""
        done = self._layers.pop()
        self._layers[-1].update(done)

    def rollback(self) -> None:
        """The innermost savepoint rolled back: its changes never happened."""
        self._layers.pop()

    def flush(self, db: sqlite3.Connection) -> None:
        """Write the transaction's sums (inside it, before its commit)."""
        (changes,) = self._layers
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for (kind, *columns), n in changes.items():
            if n:
                rows.setdefault(kind, []).append((*columns, n))
        for kind, values in rows.items():
            db.executemany(UPSERTS[kind], values)
        changes.clear()
