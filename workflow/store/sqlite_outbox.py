"""The messages to deliver in SQLite: one row per message, ``seq`` the order they were
written in (``workflow.store.base.Outbox``; schema step 5)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from workflow.store.base import Doc
from workflow.store.sqlite_schema import dumps

if TYPE_CHECKING:
    from workflow.store.sqlite import SqliteStore

_INSERT = ("INSERT INTO outbox (key, target, state, work, version, created, due, doc) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING")  # fmt: skip


def write_notes(db: sqlite3.Connection, notes: Sequence[Doc]) -> int:
    """Insert ``notes`` inside the open write transaction ``db`` (the one of the state
    change that causes them); a key stored already is left as it is. Returns how many
    were new."""
    new = 0
    for note in notes:
        new += db.execute(_INSERT, _row(note)).rowcount
    return new


def _row(doc: Doc) -> tuple[Any, ...]:
    return (doc["key"], doc["target"], doc["state"], doc.get("work"), int(doc["version"]),
            float(doc["created"]), float(doc["due"]), dumps(doc))  # fmt: skip


def _load(text: str, seq: int) -> Doc:
    doc: Doc = orjson.loads(text)
    doc["seq"] = seq
    return doc


class SqliteOutbox:
    """The ``outbox`` table."""

    def __init__(self, store: SqliteStore):
        self._store = store

    def add(self, notes: Sequence[Doc]) -> int:
        if not notes:
            return 0
        with self._store.write(alone=True) as db:
            return write_notes(db, notes)

    def get(self, key: str) -> Doc | None:
        rows = self._store.rows_here("SELECT doc, seq FROM outbox WHERE key = ?", (key,))
        return _load(*rows[0]) if rows else None

    def heads(self, target: str | None = None) -> list[Doc]:
        if target is not None:
            rows = self._store.rows_here(
                "SELECT doc, seq FROM outbox WHERE state IN ('pending', 'sending') "
                "AND target = ? ORDER BY seq LIMIT 1", (target,))  # fmt: skip
            return [_load(*row) for row in rows]
        rows = self._store.rows_here(
            "SELECT doc, seq FROM outbox WHERE seq IN (SELECT MIN(seq) FROM outbox "
            "WHERE state IN ('pending', 'sending') GROUP BY target) ORDER BY seq")  # fmt: skip
        return [_load(*row) for row in rows]

    def recording(self, now: float, limit: int = 100) -> list[Doc]:
        rows = self._store.rows_here("SELECT doc, seq FROM outbox WHERE state = 'recording' "
                                     "AND due <= ? ORDER BY seq LIMIT ?", (now, limit))  # fmt: skip
        return [_load(*row) for row in rows]

    def put(self, doc: Doc, expect: int) -> bool:
        row = _row({k: v for k, v in doc.items() if k != "seq"})
        with self._store.write(alone=True) as db:
            return bool(db.execute(
                "UPDATE outbox SET target = ?, state = ?, work = ?, version = ?, created = ?, "
                "due = ?, doc = ? WHERE key = ? AND version = ?",
                (*row[1:], doc["key"], expect)).rowcount)  # fmt: skip

    def find(self, *, work: str | None = None, states: list[str] | None = None,
             target: str | None = None, limit: int = 100) -> list[Doc]:  # fmt: skip
        sql, params = "SELECT doc, seq FROM outbox WHERE 1", []
        for column, value in (("work", work), ("target", target)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params += states
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(str(limit))
        return [_load(*row) for row in self._store.rows_here(sql, params)]

    def prune(self, before: float) -> int:
        with self._store.write(alone=True) as db:
            return int(db.execute("DELETE FROM outbox WHERE state = 'done' AND created < ?",
                                  (before,)).rowcount)  # fmt: skip
