"""schemathesis hooks (``SCHEMATHESIS_HOOKS=hostile_hooks``): every generated request
gets one hostile value planted somewhere in its body or query, the values an attacker
or a careless client sends: NaN and Infinity (as JSON's non-standard literals), numbers
past 64 bits and past a double, NUL characters, huge strings and deep nesting."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import strategies as st


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"d": [value]}
    return value


#: Planted in bodies; the text ones in queries too.
HOSTILE: list[Any] = [float("nan"), float("inf"), -float("inf"), 10**30, -(10**40), 1e308,
                      "\x00", "a\x00b", "x" * 200_000, "=cmd|' /C calc'!A0", "\ud800",
                      {"\x00key": 1}, _deep(40), _deep(130), [[[[[[[[[[[]]]]]]]]]]]]  # fmt: skip
#: Planted in queries (a lone surrogate cannot even be put in a URL).
TEXT = [value for value in HOSTILE if isinstance(value, str) and value != "\ud800"] \
    + ["9" * 40, "-1e400", "nan"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _plant(value: Any, hostile: Any, pick: int) -> Any:
    paths = _paths(value)
    path = paths[pick % len(paths)]
    if not path:
        return hostile
    node = value
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = hostile
    return value


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> Any:
    return st.tuples(st.sampled_from(HOSTILE), st.integers(0, 1000)).map(
        lambda pair: _plant(body, *pair))


@schemathesis.hook
def flatmap_query(ctx: Any, query: Any) -> Any:
    if not query:
        return st.just(query)
    names = sorted(query)
    return st.tuples(st.sampled_from(names), st.sampled_from(TEXT)).map(
        lambda pair: {**query, pair[0]: pair[1]})


@schemathesis.serializer("application/json")
def json_with_literals(ctx: Any, value: Any) -> bytes:
    """JSON as careless encoders write it: NaN and Infinity as bare literals."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value, allow_nan=True).encode()
