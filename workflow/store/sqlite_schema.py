"""The SQLite schema: one JSON document per work plus the columns that indexes need.

The bucket (``work``) and the results (``results``) share a shape. Indexed columns are
copied out of the document on every write; everything else is read with
``json_extract``. Counts per pipeline and status are kept in tally tables by the store
(``workflow.store.sqlite_tally``), so dashboards never scan a million rows. The tables
themselves are made, and changed, by ``workflow.store.sqlite_migrations``.
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


def dumps(doc: dict[str, Any]) -> str:
    """A document as stored: JSON text."""
    return orjson.dumps(doc).decode()


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
