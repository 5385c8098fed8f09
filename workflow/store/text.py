"""What free-text search sees of a work: the words of its parameters, results and errors."""

from __future__ import annotations

from typing import Any

#: At most this many characters of a work are indexed for text search.
TEXT_LIMIT = 65_536


def text_of(doc: dict[str, Any]) -> str:
    """The searchable text of ``doc``: keys and values of parameters and results, tags,
    events, user, site and the error messages of its history, truncated to TEXT_LIMIT."""
    parts: list[str] = []
    for name in ("parameters", "results"):
        _walk(doc.get(name), parts)
    for name in ("tags", "event"):
        _walk(doc.get(name), parts)
    for name in ("user", "site", "function"):
        if doc.get(name):
            parts.append(str(doc[name]))
    for entry in doc.get("history") or []:
        error = entry.get("error") or {}
        _walk([error.get("type"), error.get("message")], parts)
    return " ".join(parts)[:TEXT_LIMIT]


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
