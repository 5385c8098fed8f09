"""Checking the Mongo-style filters and projections that arrive over HTTP.

CHIME/FRB clients send MongoDB filters. Only the part of the language they use is
accepted: field equality, ``$in $nin $eq $ne $gt $gte $lt $lte $exists``, ``$and``,
``$or``, and ``$expr`` comparing two fields. Anything else (``$where``, ``$regex``,
``$function``, ...) is refused with ``FilterRejected`` naming the dotted location of
the offending key, so every backend compiles only this subset and no filter runs code.
"""

from __future__ import annotations

import re
from typing import Any

from workflow.errors import FilterRejected

#: Deepest nesting of dicts and lists in one filter (the filter itself is depth 1).
MAX_DEPTH = 8
#: Most dict keys plus list elements in one filter.
MAX_TERMS = 1000
#: Longest field path.
MAX_PATH = 200

_TOP = frozenset({"$and", "$or", "$expr"})
_COMPARE = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
_FIELD_OPERATORS = _COMPARE | {"$in", "$nin", "$exists"}
#: Every operator a filter may contain.
OPERATORS: frozenset[str] = _TOP | _FIELD_OPERATORS
_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_SCALARS = (str, int, float, bool, type(None))
_EXPR = 'compares two fields only, as in {"$expr": {"$gte": ["$attempt", "$retries"]}}'


def is_field_path(path: object) -> bool:
    """Whether ``path`` is dot-separated ``[A-Za-z0-9_-]+`` names, at most 200 characters."""
    return isinstance(path, str) and len(path) <= MAX_PATH and bool(_PATH.fullmatch(path))


def check_filter(query: object, *, field: str = "query") -> dict[str, Any]:
    """Return ``query`` unchanged if it is an allowed filter.

    Args:
        query: A decoded JSON filter. ``None`` is refused: callers decide what an
            absent filter means.
        field: Name of the request field, the start of every error location.

    Returns:
        The same dict.

    Raises:
        FilterRejected: the filter uses something outside the supported subset or is
            larger than ``MAX_DEPTH`` / ``MAX_TERMS``; ``field`` is the dotted location
            of the problem and ``operator`` the offending operator, if any.
    """
    if not isinstance(query, dict):
        raise _rejected(f"a filter must be an object, not {_kind(query)}", field)
    _measure(query, field)
    _check_clauses(query, field)
    return query


def _measure(query: dict[str, Any], field: str) -> None:
    # Measured first and without recursion, so an oversized filter is refused before
    # any work proportional to its size (or its depth) is done.
    terms = 0
    stack: list[tuple[dict[Any, Any] | list[Any], int, str]] = [(query, 1, field)]
    while stack:
        node, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise _rejected(f"the filter is nested deeper than the limit of {MAX_DEPTH}",
                            where, limit=MAX_DEPTH)  # fmt: skip
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            terms += 1
            if terms > MAX_TERMS:
                raise _rejected(f"the filter has more than the limit of {MAX_TERMS} terms",
                                field, limit=MAX_TERMS)  # fmt: skip
            if isinstance(value, dict | list):
                stack.append((value, depth + 1, f"{where}.{key}"))


def _check_clauses(query: dict[str, Any], where: str) -> None:
    for key, value in query.items():
        here = f"{where}.{key}"
        if not _is_operator(key):
            _check_path(key, here)
            _check_condition(value, here)
        elif key not in _TOP:
            raise _rejected(f"operator {key} is not allowed at the top of a filter; "
                            f"allowed: {_names(_TOP)} and field names", here, key)  # fmt: skip
        elif key == "$expr":
            _check_expr(value, here)
        elif not isinstance(value, list) or not value:
            raise _rejected(f"{key} takes a non-empty list of filters", here, key)
        else:
            for i, sub in enumerate(value):
                if not isinstance(sub, dict):
                    raise _rejected(f"{key} takes objects, not {_kind(sub)}", f"{here}.{i}", key)
                _check_clauses(sub, f"{here}.{i}")


def _check_path(key: object, where: str) -> None:
    if not is_field_path(key):
        raise _rejected(f"{key!r} is not a field path: use dot-separated names of letters, "
                        f"digits, '_' and '-', at most {MAX_PATH} characters", where)  # fmt: skip


def _check_expr(value: object, where: str) -> None:
    if not isinstance(value, dict) or len(value) != 1:
        raise _rejected(f"$expr {_EXPR}", where, "$expr")
    ((op, args),) = value.items()
    if op not in _COMPARE:
        raise _rejected(f"$expr {_EXPR}; {op} is not one of {_names(_COMPARE)}",
                        f"{where}.{op}", op)  # fmt: skip
    fields = args if isinstance(args, list) and len(args) == 2 else [None]
    if not all(isinstance(a, str) and a[:1] == "$" and is_field_path(a[1:]) for a in fields):
        raise _rejected(f"$expr {_EXPR}", f"{where}.{op}", "$expr")


def _check_condition(value: object, where: str) -> None:
    if not isinstance(value, dict) or not any(_is_operator(k) for k in value):
        _check_literal(value, where)  # equality, with a sub-document too
        return
    if not all(_is_operator(k) for k in value):
        raise _rejected("an object mixes operators and field names", where)
    for op, arg in value.items():
        here = f"{where}.{op}"
        if op not in _FIELD_OPERATORS:
            raise _rejected(f"operator {op} is not allowed on a field; "
                            f"allowed: {_names(_FIELD_OPERATORS)}", here, op)  # fmt: skip
        if op in ("$in", "$nin"):
            if not isinstance(arg, list):
                raise _rejected(f"{op} takes a list, not {_kind(arg)}", here, op)
            for i, item in enumerate(arg):
                _check_scalar(item, f"{here}.{i}", op)
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise _rejected(f"$exists takes true or false, not {_kind(arg)}", here, op)
        elif op in ("$eq", "$ne"):
            _check_literal(arg, here)
        else:  # ordering lists or documents has no portable meaning across backends
            _check_scalar(arg, here, op)


def _check_scalar(value: object, where: str, op: str) -> None:
    if not isinstance(value, _SCALARS):
        raise _rejected(f"{op} takes strings, numbers, booleans or null, not {_kind(value)}",
                        where, op)  # fmt: skip


def _check_literal(value: object, where: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_literal(item, f"{where}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise _rejected(f"{key!r} is not allowed inside a value", f"{where}.{key}",
                                key if isinstance(key, str) else None)  # fmt: skip
            _check_literal(item, f"{where}.{key}")
    elif not isinstance(value, _SCALARS):
        raise _rejected(f"{_kind(value)} is not a JSON value", where)


def check_projection(projection: object, *, field: str = "projection") -> dict[str, bool]:
    """Check a Mongo projection and return it as ``{path: include}``.

    Args:
        projection: ``None``, or an object mapping field paths to 0/1/true/false.
            Inclusion and exclusion cannot be mixed, except that ``_id`` and ``id``
            may be excluded from an inclusion (CHIME clients add ``"_id": false``).
        field: Name of the request field, the start of every error location.

    Returns:
        The projection with boolean values; ``{}`` for ``None`` or ``{}``.

    Raises:
        FilterRejected: not an object, a bad path or value, too many keys, or mixed
            inclusion and exclusion; ``field`` is ``projection.<key>``.
    """
    if projection is None:
        return {}
    if not isinstance(projection, dict):
        raise _rejected(f"a projection must be an object, not {_kind(projection)}", field)
    if len(projection) > MAX_TERMS:
        raise _rejected(f"the projection has more than the limit of {MAX_TERMS} fields",
                        field, limit=MAX_TERMS)  # fmt: skip
    out: dict[str, bool] = {}
    for key, value in projection.items():
        _check_path(key, f"{field}.{key}")
        if not (isinstance(value, bool) or (type(value) is int and value in (0, 1))):
            raise _rejected(f"a projection value is 0, 1, true or false, not {value!r}",
                            f"{field}.{key}")  # fmt: skip
        out[key] = bool(value)
    if any(out.values()):
        for key, include in out.items():
            if not include and key not in ("_id", "id"):
                raise _rejected("a projection cannot mix inclusion and exclusion "
                                "(except of _id and id)", f"{field}.{key}")  # fmt: skip
    return out


def apply_projection(doc: dict[str, Any], projection: dict[str, bool]) -> dict[str, Any]:
    """Apply a checked projection to a document, without changing the document.

    Args:
        doc: A work document.
        projection: The result of ``check_projection``. ``_id`` entries are ignored
            (documents have no ``_id``); an empty projection returns ``doc`` itself.

    Returns:
        For an inclusion, only the listed paths (dotted paths as nested dicts) plus
        ``id`` unless it is excluded; for an exclusion, ``doc`` without the listed paths.
    """
    paths = {k: v for k, v in projection.items() if k != "_id"}
    if not paths:
        return doc
    include = any(paths.values())
    if include:
        paths.setdefault("id", True)
    tree: dict[str, Any] = {}  # {"config": {"parent": True}}; True takes the whole value
    for path in (p for p, keep in paths.items() if keep == include):
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if node is True:  # a parent is already taken whole
                break
        else:
            node[last] = True
    return _project(doc, tree, include)


def _project(doc: dict[str, Any], tree: dict[str, Any], include: bool) -> dict[str, Any]:
    out = {} if include else dict(doc)
    for key, sub in tree.items():
        if key not in doc:
            continue
        value = doc[key]
        if sub is True:
            if include:
                out[key] = value
            else:
                del out[key]
        elif isinstance(value, dict):
            out[key] = _project(value, sub, include)
        elif isinstance(value, list):  # as Mongo: into arrays of documents
            items = [_project(v, sub, include) if isinstance(v, dict) else v for v in value]
            out[key] = [v for v in items if isinstance(v, dict)] if include else items
    return out


def _rejected(message: str, where: str, operator: str | None = None, **details: Any
              ) -> FilterRejected:  # fmt: skip
    if operator is not None:
        details["operator"] = operator
    return FilterRejected(message, field=where, **details)


def _is_operator(key: object) -> bool:
    return isinstance(key, str) and key.startswith("$")


def _names(operators: frozenset[str]) -> str:
    return ", ".join(sorted(operators))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
