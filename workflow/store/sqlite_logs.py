"""The attempts' logs in SQLite: one row per attempt (``workflow.store.base.LogBook``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from workflow.store.base import Doc
from workflow.store.sqlite_schema import dumps

if TYPE_CHECKING:
    from workflow.store.sqlite import SqliteStore


class SqliteLogs:
    """The ``logs`` table: (work, attempt) → size and the document (schema step 3)."""

    def __init__(self, store: SqliteStore):
        self._store = store

    def get(self, work: str, attempt: int) -> Doc | None:
        rows = self._store.rows_here("SELECT doc FROM logs WHERE work = ? AND attempt = ?",
                                     (work, attempt))  # fmt: skip
        return orjson.loads(rows[0][0]) if rows else None

    def attempts(self, work: str) -> list[Doc]:
        rows = self._store.rows(
            "SELECT json_remove(doc, '$.text') FROM logs WHERE work = ? ORDER BY attempt",
            (work,))  # fmt: skip
        return [orjson.loads(text) for (text,) in rows]

    def put(self, doc: Doc, expect: int | None) -> bool:
        key = (doc["work"], doc["attempt"])
        with self._store.write(alone=True) as db:
            if expect is None:
                return bool(db.execute(
                    "INSERT INTO logs VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (*key, doc["size"], dumps(doc))).rowcount)  # fmt: skip
            return bool(db.execute(
                "UPDATE logs SET size = ?, doc = ? WHERE work = ? AND attempt = ? AND size = ?",
                (doc["size"], dumps(doc), *key, expect)).rowcount)  # fmt: skip

    def forget(self, works: list[str]) -> int:
        if not works:
            return 0
        with self._store.write(alone=True) as db:
            marks = ",".join("?" * len(works))
            return int(db.execute(f"DELETE FROM logs WHERE work IN ({marks})", works).rowcount)
