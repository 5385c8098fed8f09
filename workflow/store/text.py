"""What free-text search sees of a work: the words of its parameters, results, errors and
provenance."""

from __future__ import annotations

import re
from typing import Any

#: Words kept per result for text search where the store keeps a list (MongoDB).
MAX_WORDS = 4000
WORD = re.compile(r"[^\W_]+")
#: At most this many characters of a work are indexed for text search.
TEXT_LIMIT = 65_536


def text_of(doc: dict[str, Any]) -> str:
    """The searchable text of ``doc``: keys and values of parameters and results, tags,
    events, user, site, and of its history the error messages and the provenance (its
    values, and the names of the modules in ``code``), truncated to TEXT_LIMIT."""
    parts: list[str] = []
    for name in ("parameters", "results"):
        _walk(doc.get(name), parts)
    for name in ("tags", "event"):
        _walk(doc.get(name), parts)
    for name in ("user", "site", "function"):
        if doc.get(name):
            parts.append(str(doc[name]))
    seen: list[Any] = []
    for entry in doc.get("history") or []:
        error = entry.get("error") or {}
        _walk([error.get("type"), error.get("message")], parts)
        record = entry.get("provenance")
        if record and record not in seen:  # attempts on the same host say the same
            seen.append(record)
            _provenance(record, parts)
    return " ".join(parts)[:TEXT_LIMIT]


def _provenance(record: Any, parts: list[str]) -> None:
    """The values of a provenance record, and the module names of its ``code`` (its other
    keys, such as ``python``, are in every record: no word to search by)."""
    if not isinstance(record, dict):
        return
    for name, value in record.items():
        if name != "code" or not isinstance(value, dict):
            _walk(value, parts)
            continue
        for module, origin in value.items():
            parts.append(str(module))
            _walk(list(origin.values()) if isinstance(origin, dict) else origin, parts)


def _walk(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            parts.append(str(key))
            _walk(item, parts)
    elif isinstance(value, list):
        for item in value:
            _walk(item, parts)
    elif value is not None and not isinstance(value, bool):
        parts.append(str(value))


def words(doc: dict[str, Any]) -> list[str]:
    """The distinct lower-case words of a work's searchable text."""
    return list(dict.fromkeys(WORD.findall(text_of(doc).lower())))[:MAX_WORDS]


def text_filter(text: str | None) -> dict[str, Any]:
    """A MongoDB filter: every word of ``text`` as the prefix of one of a result's words."""
    terms = WORD.findall((text or "").lower())
    return {"$and": [{"_words": {"$regex": f"^{re.escape(t)}"}} for t in terms]} if terms else {}
