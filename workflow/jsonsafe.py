"""JSON that every part of the system can hold: checked on the way in, encoded on the way
out whatever is already stored.

On the way in (``parse``), a body is refused, naming the field, when it holds what JSON
does not allow or what would break a later step: NaN or Infinity (Python's and other
languages' non-standard literals), numbers that overflow a double (``1e400``), NUL
characters (which cut text searches and C strings short), or nesting deeper than a limit
(encoders have their own, lower in some places than in others). On the way out
(``dumps``), a value that orjson cannot write (nesting past its 254 levels, integers past
64 bits, stored before these checks existed) is written by the standard library instead,
so one such document answers like any other instead of failing the reply it is in.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from workflow.errors import InvalidWork, LimitExceeded

#: How deep a request body may nest (``WORKFLOW_MAX_DEPTH``).
MAX_DEPTH = 64
_CONTAINERS = (dict, list)


def parse(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON request body, once it passed every check.

    Raises:
        InvalidWork: malformed JSON, a non-finite number or a NUL character (the field
            is named).
        LimitExceeded: nesting deeper than ``max_depth`` (the field is named).
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _why_unparsed(body, exc, max_depth) from None
    # Cheap tests on the raw bytes first: most bodies need no walk at all.
    has_nul = b"\\u0000" in body
    deep = body.count(b"[") + body.count(b"{") > max_depth and _deeper(value, max_depth)
    if has_nul or deep:
        problem = find_problem(value, max_depth, strings=has_nul)
        if problem is not None:
            raise problem
    return value


def _deeper(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests deeper than ``max_depth``: a walk of the containers only,
    level by level, without the paths ``find_problem`` keeps to name a field."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        below: list[Any] = []
        for node in level:
            items = node.values() if type(node) is dict else node
            below += [item for item in items if type(item) is dict or type(item) is list]
        level = below
    return False


def find_problem(value: Any, max_depth: int = MAX_DEPTH, *, strings: bool = True
                 ) -> InvalidWork | LimitExceeded | None:  # fmt: skip
    """The first thing ``value`` holds that a body may not, as the error to raise; None
    when it is fine. ``strings=False`` skips looking for NUL characters."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= max_depth and isinstance(node, _CONTAINERS):
            return _too_deep(path, max_depth)
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, item in items:
            if strings and isinstance(key, str) and "\x00" in key:
                return _nul(path + (key,))
            if isinstance(item, _CONTAINERS):
                stack.append((item, path + (key,)))
            elif strings and isinstance(item, str) and "\x00" in item:
                return _nul(path + (key,))
            elif isinstance(item, float) and not math.isfinite(item):
                return _non_finite(path + (key,))
        if strings and isinstance(node, str) and "\x00" in node:
            return _nul(path)
        if isinstance(node, float) and not math.isfinite(node):
            return _non_finite(path)
    return None


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes: orjson's, or the standard library's for what orjson
    cannot write. Non-finite numbers become ``null`` in both."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False,
                          default=str).encode()  # fmt: skip


def unwritable(value: Any) -> str | None:
    """Why ``value`` cannot be written as JSON by ``dumps``, even wrapped in the two
    levels a reply adds around it (``{"works": [value]}``); None when it can."""
    try:
        dumps({"works": [value]})
    except (ValueError, TypeError, RecursionError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _why_unparsed(body: bytes, exc: orjson.JSONDecodeError, max_depth: int
                  ) -> InvalidWork | LimitExceeded:  # fmt: skip
    """The error for a body orjson refused: a non-finite number names its field (the
    standard library reads NaN and Infinity, so it can say where they are)."""
    if "depth limit" in str(exc):  # deeper than orjson reads (1024), so than ours too
        return _too_deep((), max_depth)
    try:
        lenient = json.loads(body)
    except (ValueError, RecursionError):
        return InvalidWork(f"body: malformed JSON: {exc}", field="body")
    found = find_problem(lenient, max_depth=10_000, strings=False)
    if isinstance(found, InvalidWork):
        return found
    return InvalidWork(f"body: malformed JSON: {exc}", field="body")


def _name(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path) or "body"


def _too_deep(path: tuple[Any, ...], max_depth: int) -> LimitExceeded:
    return LimitExceeded(f"{_name(path)}: the body nests deeper than {max_depth} levels "
                         "(WORKFLOW_MAX_DEPTH)", field=_name(path), limit=max_depth)


def _nul(path: tuple[Any, ...]) -> InvalidWork:
    return InvalidWork(f"{_name(path)}: text may not contain NUL characters (\\u0000)",
                       field=_name(path))  # fmt: skip


def _non_finite(path: tuple[Any, ...]) -> InvalidWork:
    return InvalidWork(f"{_name(path)}: NaN, Infinity and numbers beyond a double's range "
                       "are not JSON numbers", field=_name(path))  # fmt: skip
