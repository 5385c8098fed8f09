"""Pipeline runs, configurations and schedules in SQLite: one row per document
(``workflow.store.base.Documents``; schema step 4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from workflow.store.base import Doc
from workflow.store.sqlite_outbox import write_notes
from workflow.store.sqlite_schema import dumps

if TYPE_CHECKING:
    from workflow.store.sqlite import SqliteStore


class SqliteDocuments:
    """The ``documents`` table: (kind, id) → version, status, name, creation, document."""

    def __init__(self, store: SqliteStore):
        self._store = store

    def get(self, kind: str, id: str) -> Doc | None:
        rows = self._store.rows_here("SELECT doc FROM documents WHERE kind = ? AND id = ?",
                                     (kind, id))  # fmt: skip
        return orjson.loads(rows[0][0]) if rows else None

    def find(self, kind: str, *, status: list[str] | None = None, name: str | None = None,
             limit: int | None = None) -> list[Doc]:  # fmt: skip
        sql, params = "SELECT doc FROM documents WHERE kind = ?", [kind]
        if status:
            sql += f" AND status IN ({','.join('?' * len(status))})"
            params += status
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        sql += " ORDER BY creation DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(str(limit))
        return [orjson.loads(text) for (text,) in self._store.rows_here(sql, params)]

    def put(self, kind: str, doc: Doc, expect: int | None, notes: Sequence[Doc] = ()
            ) -> bool:  # fmt: skip
        row: tuple[Any, ...] = (kind, doc["id"], int(doc["version"]), doc.get("status"),
                                doc.get("name"), doc.get("creation"), dumps(doc))  # fmt: skip
        with self._store.write(alone=True) as db:
            if expect is None:
                done = db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?) "
                                  "ON CONFLICT DO NOTHING", row).rowcount  # fmt: skip
            else:
                done = db.execute(
                    "UPDATE documents SET version = ?, status = ?, name = ?, creation = ?, "
                    "doc = ? WHERE kind = ? AND id = ? AND version = ?",
                    (*row[2:], kind, doc["id"], expect)).rowcount  # fmt: skip
            if done:
                write_notes(db, notes)
            return bool(done)

    def delete(self, kind: str, ids: list[str]) -> int:
        if not ids:
            return 0
        with self._store.write(alone=True) as db:
            marks = ",".join("?" * len(ids))
            return int(db.execute(f"DELETE FROM documents WHERE kind = ? AND id IN ({marks})",
                                  [kind, *ids]).rowcount)  # fmt: skip
