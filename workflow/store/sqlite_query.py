"""Compiling a checked Mongo-style filter into a SQLite ``WHERE`` expression.

Documents are JSON text in one column; a few top-level fields are copied into real,
indexed columns. The compiler reads those fields from their columns (so SQLite can use
the indexes) and everything else with ``json_extract``. The semantics follow MongoDB's
for work documents: a missing field equals ``None``, ``$ne`` and ``$nin`` match missing
fields, and equality and ``$in`` on the array fields (``tags``, ``event``, ...) match
when any element does. Values are always bound as ``?`` parameters; the only text
built from the filter is JSON paths made of segments checked to be ``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workflow.errors import FilterRejected
from workflow.filters import is_field_path

#: Fields stored as JSON arrays (or null), matched element by element as in MongoDB.
ARRAY_FIELDS: frozenset[str] = frozenset(
    {"tags", "event", "products", "plots", "command", "config.orgs", "config.teams"}
)

Sql = tuple[str, list[Any]]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
# $expr compares like Mongo's aggregation: null and missing are equal to each other
# (SQLite cannot tell them apart) and lower than any value.
_EXPR = {
    "$eq": "{a} IS {b}",
    "$ne": "{a} IS NOT {b}",
    "$gt": "({a} > {b} OR ({b} IS NULL AND {a} IS NOT NULL))",
    "$gte": "({a} >= {b} OR {b} IS NULL)",
    "$lt": "({a} < {b} OR ({a} IS NULL AND {b} IS NOT NULL))",
    "$lte": "({a} <= {b} OR {a} IS NULL)",
}


def compile_query(query: dict[str, Any], columns: Mapping[str, str], *, doc: str = "doc",
                  arrays: frozenset[str] = ARRAY_FIELDS) -> tuple[str, list[Any]]:  # fmt: skip
    """Compile a filter checked by ``workflow.filters.check_filter`` into SQL.

    Args:
        query: The filter.
        columns: Top-level field name to the indexed column holding it, for example
            ``{"id": "id", "status": "status"}``.
        doc: The column holding each document as JSON text.
        arrays: Field paths holding JSON arrays, matched element by element.

    Returns:
        ``(expression, params)`` for ``... WHERE <expression>`` with ``?`` placeholders;
        ``("1", [])`` for an empty filter.

    Raises:
        FilterRejected: the filter holds something ``check_filter`` would refuse.
        ValueError: ``doc`` or a column is not a plain SQL name.
    """
    for name in (doc, *columns.values()):
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a SQL column name")
    return _Compiler(columns, doc, arrays).clauses(query)


def json_path(path: str) -> str:
    """The SQLite JSON path of a dotted field path: ``a.b`` gives ``$."a"."b"``.

    Raises:
        FilterRejected: ``path`` is not a field path (see ``is_field_path``).
    """
    if not is_field_path(path):
        raise FilterRejected(f"{path!r} is not a field path", field=f"query.{path}")
    return "$." + ".".join(f'"{segment}"' for segment in path.split("."))


class _Compiler:
    def __init__(self, columns: Mapping[str, str], doc: str, arrays: frozenset[str]):
        self.columns = columns
        self.doc = doc
        self.arrays = arrays

    def clauses(self, query: dict[str, Any]) -> Sql:
        parts: list[Sql] = []
        for key, value in query.items():
            if key in ("$and", "$or"):
                parts.append(_join([self.clauses(sub) for sub in value], key[1:].upper()))
            elif key == "$expr":
                ((op, (left, right)),) = value.items()
                if op not in _EXPR:
                    raise FilterRejected(f"$expr cannot use {op}", field="query.$expr",
                                         operator=op)  # fmt: skip
                sides = {"a": self.value(left[1:]), "b": self.value(right[1:])}
                parts.append((_EXPR[op].format(**sides), []))
            elif key.startswith("$"):
                raise FilterRejected(f"operator {key} is not supported", field=f"query.{key}",
                                     operator=key)  # fmt: skip
            elif isinstance(value, dict) and value and all(k.startswith("$") for k in value):
                parts.append(_join([self.operator(key, op, v) for op, v in value.items()]))
            else:
                parts.append(self.equal(key, value))
        return _join(parts)

    def operator(self, path: str, op: str, value: Any) -> Sql:
        if op == "$eq":
            return self.equal(path, value)
        if op == "$ne":
            return _not(self.equal(path, value))
        if op == "$in":
            return self.any_of(path, value)
        if op == "$nin":
            return _not(self.any_of(path, value))
        if op == "$exists":  # json_type is 'null' for null and NULL when missing
            present = self.column(path) or self.json_type(path)
            return f"{present} IS {'NOT ' if value else ''}NULL", []
        if op in _RANGE:
            return self.compare(path, _RANGE[op], value)
        raise FilterRejected(f"operator {op} is not supported", field=f"query.{path}.{op}",
                             operator=op)  # fmt: skip

    def column(self, path: str) -> str | None:
        """The indexed column holding the field, if any (arrays are read as JSON)."""
        return None if path in self.arrays else self.columns.get(path)

    def value(self, path: str) -> str:
        """SQL for the field's value; NULL when it is null or missing."""
        return self.column(path) or f"json_extract({self.doc}, '{json_path(path)}')"

    def kind(self, path: str) -> str:
        """SQL for the field's type, named as by ``json_type`` (``typeof`` for columns)."""
        column = self.column(path)
        return f"typeof({column})" if column else self.json_type(path)

    def json_type(self, path: str) -> str:
        return f"json_type({self.doc}, '{json_path(path)}')"

    def elements(self, path: str, condition: str) -> str:
        """SQL true when some element of the array at ``path`` meets ``condition``."""
        return (f"EXISTS (SELECT 1 FROM json_each({self.doc}, '{json_path(path)}') "
                f"WHERE {condition})")  # fmt: skip

    def is_null(self, path: str) -> Sql:
        if path in self.arrays:  # Mongo: null also matches an array holding null
            nulls = self.elements(path, "type = 'null'")
            return f"({self.value(path)} IS NULL OR {nulls})", []
        return f"{self.value(path)} IS NULL", []

    def equal(self, path: str, value: Any) -> Sql:
        if value is None:
            return self.is_null(path)
        if isinstance(value, list | dict):
            # Exact equality of the stored JSON text. SQLite keeps string escapes as
            # written, so match both the \u-escaped and the raw spelling.
            spellings = list(dict.fromkeys(
                json.dumps(value, separators=(",", ":"), ensure_ascii=escaped)
                for escaped in (True, False)
            ))  # fmt: skip
            return (f"(CASE WHEN {self.json_type(path)} IN ('array', 'object') "
                    f"THEN json_extract({self.doc}, '{json_path(path)}') END) "
                    f"IN ({_marks(spellings)})", spellings)  # fmt: skip
        if path in self.arrays:
            return self.elements(path, "value = ?"), [_param(value)]
        return f"{self.value(path)} = ?", [_param(value)]

    def any_of(self, path: str, values: list[Any]) -> Sql:
        params = [_param(v) for v in values if v is not None]
        parts: list[Sql] = []
        if params and path in self.arrays:
            parts.append((self.elements(path, f"value IN ({_marks(params)})"), params))
        elif params:
            parts.append((f"{self.value(path)} IN ({_marks(params)})", params))
        if None in values:
            parts.append(self.is_null(path))
        return _join(parts, "OR")

    def compare(self, path: str, op: str, value: Any) -> Sql:
        if value is None:  # Mongo: null is only >= and <= null
            return self.is_null(path) if "=" in op else ("0", [])
        # Mongo compares numbers with numbers and strings with strings only; SQLite
        # would order any number below any text.
        if isinstance(value, bool):
            kinds = "'integer'" if self.column(path) else "'true', 'false'"
        elif isinstance(value, str):
            kinds = "'text'"
        else:
            kinds = "'integer', 'real'"
        if path in self.arrays:
            return self.elements(path, f"value {op} ? AND type IN ({kinds})"), [_param(value)]
        return f"({self.value(path)} {op} ? AND {self.kind(path)} IN ({kinds}))", [_param(value)]


def _join(parts: list[Sql], op: str = "AND") -> Sql:
    if not parts:
        return ("1" if op == "AND" else "0"), []
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]


def _not(part: Sql) -> Sql:
    # COALESCE: a comparison with a missing field is NULL, and NOT NULL is not true,
    # but Mongo's $ne and $nin match missing fields.
    return f"NOT COALESCE(({part[0]}), 0)", part[1]


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


def _param(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value
