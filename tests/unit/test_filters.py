"""Which Mongo-style filters and projections are accepted, and how refusals are reported."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.errors import FilterRejected, InvalidWork
from workflow.filters import (
    MAX_DEPTH,
    MAX_TERMS,
    OPERATORS,
    apply_projection,
    check_filter,
    check_projection,
)

CHIME_FILTERS: list[dict[str, Any]] = [
    {
        "pipeline": {"$in": ["a"]},
        "site": "chime",
        "priority": 4,
        "event": {"$in": [1]},
        "tags": {"$in": ["t"]},
        "config.parent": {"$in": ["p"]},
    },
    {"status": "failure", "$expr": {"$gte": ["$attempt", "$retries"]}, "creation": {"$gt": 1.0}},
    {"results.locked": True},
    {"id": {"$in": ["x"]}},
    {"event": [123]},
]


@pytest.mark.parametrize("query", CHIME_FILTERS)
def test_chime_filters_are_accepted_unchanged(query: dict[str, Any]) -> None:
    assert check_filter(query) is query


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"a": None, "b": 1.5, "c": [1, "x", None, [2]], "d": {"e": {"f": [True]}}},
        {"a": {"$eq": {"x": [1]}}, "b": {"$ne": None}, "c": {"$gt": 1, "$lt": 5.5}},
        {"a": {"$gte": "x", "$lte": "z"}, "b": {"$nin": []}, "c": {"$exists": False}},
        {"$or": [{"a": 1}, {"$and": [{"b": 2}, {"$expr": {"$ne": ["$c", "$d.e"]}}]}]},
        {"snake_case.kebab-case.x9": 1, "config.orgs": {"$in": ["chimefrb", None]}},
    ],
)
def test_supported_filters_are_accepted(query: dict[str, Any]) -> None:
    assert check_filter(query) == query


def test_operator_list() -> None:
    assert {
        "$in",
        "$nin",
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$exists",
        "$and",
        "$or",
        "$expr",
    } == OPERATORS


@pytest.mark.parametrize(
    ("query", "field", "operator"),
    [
        ({"$where": "this.a == 1"}, "query.$where", "$where"),
        ({"$text": {"$search": "x"}}, "query.$text", "$text"),
        ({"$function": {"body": "f"}}, "query.$function", "$function"),
        ({"$nor": [{"a": 1}]}, "query.$nor", "$nor"),
        ({"$comment": "hi"}, "query.$comment", "$comment"),
        ({"tags": {"$regex": "^a"}}, "query.tags.$regex", "$regex"),
        ({"a": {"$where": "1"}}, "query.a.$where", "$where"),
        ({"a": {"$elemMatch": {"b": 1}}}, "query.a.$elemMatch", "$elemMatch"),
        ({"a": {"$size": 2}}, "query.a.$size", "$size"),
        ({"a": {"$type": "string"}}, "query.a.$type", "$type"),
        ({"a": {"$all": [1]}}, "query.a.$all", "$all"),
        ({"a": {"$not": {"$eq": 1}}}, "query.a.$not", "$not"),
        ({"a": {"$mod": [2, 0]}}, "query.a.$mod", "$mod"),
        ({"a": {"$gt": 1, "$regex": "x"}}, "query.a.$regex", "$regex"),
        ({"a": {"$and": [{"b": 1}]}}, "query.a.$and", "$and"),
        ({"a": {"$in": "x"}}, "query.a.$in", "$in"),
        ({"a": {"$nin": {"x": 1}}}, "query.a.$nin", "$nin"),
        ({"a": {"$in": [{"$where": "1"}]}}, "query.a.$in.0", "$in"),
        ({"a": {"$gt": [1]}}, "query.a.$gt", "$gt"),
        ({"a": {"$exists": 1}}, "query.a.$exists", "$exists"),
        ({"$and": []}, "query.$and", "$and"),
        ({"$or": {"a": 1}}, "query.$or", "$or"),
        ({"$or": [{"a": 1}, "b"]}, "query.$or.1", "$or"),
        ({"$or": [{"a": {"$regex": "x"}}]}, "query.$or.0.a.$regex", "$regex"),
        ({"$and": [{"$or": [{"$where": "1"}]}]}, "query.$and.0.$or.0.$where", "$where"),
        ({"a": {"b": {"$gt": 1}}}, "query.a.b.$gt", "$gt"),
        ({"a": [{"$where": "1"}]}, "query.a.0.$where", "$where"),
    ],
)
def test_operators_outside_the_subset_are_refused(
    query: dict[str, Any], field: str, operator: str
) -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter(query)
    assert info.value.field == field
    assert info.value.details["operator"] == operator
    assert info.value.status_code == 422
    assert isinstance(info.value, InvalidWork)


def test_refusal_names_the_operator_and_the_allowed_ones() -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter({"$where": "sleep(1000)"})
    assert "$where" in info.value.message
    assert "$and, $expr, $or" in info.value.message
    body = info.value.to_dict()
    assert body["field"] == "query.$where"
    assert body["operator"] == "$where"
    with pytest.raises(FilterRejected) as info:
        check_filter({"tags": {"$regex": "a"}})
    assert "$regex" in info.value.message and "$exists" in info.value.message


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"": 1}, "query."),
        ({"a..b": 1}, "query.a..b"),
        ({"a.": 1}, "query.a."),
        ({".a": 1}, "query..a"),
        ({"a.$b": 1}, "query.a.$b"),
        ({"a b": 1}, "query.a b"),
        ({"a\x00b": 1}, "query.a\x00b"),
        ({"é": 1}, "query.é"),
        ({"a" * 201: 1}, "query." + "a" * 201),
        ({"a": {"$gt": 1, "b": 2}}, "query.a"),
        ({"a": {1, 2}}, "query.a"),
        ({"a": [b"x"]}, "query.a.0"),
        ({"$or": [{"ok": 1}, {"bad key": 1}]}, "query.$or.1.bad key"),
    ],
)
def test_bad_field_paths_and_values_are_refused(query: dict[str, Any], field: str) -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter(query)
    assert info.value.field == field
    assert "operator" not in info.value.details


def test_a_long_path_at_the_limit_is_accepted() -> None:
    assert check_filter({"a" * 200: 1}) == {"a" * 200: 1}


@pytest.mark.parametrize(
    ("query", "operator"),
    [
        ({"$expr": {"$gte": ["$attempt", 3]}}, "$expr"),
        ({"$expr": {"$gte": ["$attempt"]}}, "$expr"),
        ({"$expr": {"$gte": ["$attempt", "$retries", "$x"]}}, "$expr"),
        ({"$expr": {"$gte": ["attempt", "$retries"]}}, "$expr"),
        ({"$expr": {"$gte": ["$attempt", "$$ROOT"]}}, "$expr"),
        ({"$expr": {"$gte": ["$a..b", "$retries"]}}, "$expr"),
        ({"$expr": {"$gte": ["$attempt", {"$add": ["$a", 1]}]}}, "$expr"),
        ({"$expr": {"$gte": "$attempt"}}, "$expr"),
        ({"$expr": {"$function": {"body": "x"}}}, "$function"),
        ({"$expr": {"$and": [{"$gt": ["$a", "$b"]}]}}, "$and"),
        ({"$expr": {"$gt": ["$a", "$b"], "$lt": ["$a", "$c"]}}, "$expr"),
        ({"$expr": "$a"}, "$expr"),
        ({"$expr": {}}, "$expr"),
    ],
)
def test_expr_only_compares_two_fields(query: dict[str, Any], operator: str) -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter(query)
    assert info.value.field is not None and info.value.field.startswith("query.$expr")
    assert info.value.details["operator"] == operator


@pytest.mark.parametrize("op", ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"])
def test_expr_accepts_every_comparison(op: str) -> None:
    query = {"$expr": {op: ["$attempt", "$config.retries"]}}
    assert check_filter(query) is query


@pytest.mark.parametrize("query", [None, [], "status", 1, [{"a": 1}]])
def test_the_top_level_must_be_an_object(query: object) -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter(query)
    assert info.value.field == "query"


def test_the_field_argument_starts_every_location() -> None:
    with pytest.raises(FilterRejected) as info:
        check_filter({"a": {"$regex": "x"}}, field="filter")
    assert info.value.field == "filter.a.$regex"


def test_depth_limit() -> None:
    # dict, list, dict, list, dict, operator dict, sub-document, list: depth 8
    deepest: dict[str, Any] = {"$and": [{"$or": [{"a": {"$eq": {"b": [1]}}}]}]}
    assert check_filter(deepest) is deepest
    too_deep = {"$and": [deepest]}
    with pytest.raises(FilterRejected) as info:
        check_filter(too_deep)
    assert str(MAX_DEPTH) in info.value.message and "deeper" in info.value.message
    assert info.value.details["limit"] == MAX_DEPTH
    assert info.value.field == "query.$and.0.$and.0.$or.0.a.$eq"


def test_depth_limit_counts_literal_values_too() -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    with pytest.raises(FilterRejected) as info:
        check_filter({"a": value})
    assert info.value.details["limit"] == MAX_DEPTH


def test_pathologically_deep_filters_are_refused_without_recursion_errors() -> None:
    query: dict[str, Any] = {"a": 1}
    for _ in range(5000):
        query = {"$and": [query]}
    with pytest.raises(FilterRejected):
        check_filter(query)


def test_term_limit() -> None:
    at_limit = {"a": {"$in": list(range(MAX_TERMS - 2))}}  # 2 keys + 998 elements
    assert check_filter(at_limit) is at_limit
    with pytest.raises(FilterRejected) as info:
        check_filter({"a": {"$in": list(range(MAX_TERMS - 1))}})
    assert str(MAX_TERMS) in info.value.message and "terms" in info.value.message
    assert info.value.details["limit"] == MAX_TERMS
    assert info.value.field == "query"


# -- projections --


@pytest.mark.parametrize("projection", [None, {}])
def test_no_projection(projection: object) -> None:
    assert check_projection(projection) == {}


def test_projection_values_become_booleans() -> None:
    assert check_projection({"status": 1, "config.parent": True, "_id": False}) == {
        "status": True,
        "config.parent": True,
        "_id": False,
    }
    assert check_projection({"results": 0, "parameters": False}) == {
        "results": False,
        "parameters": False,
    }
    assert check_projection({"status": 1, "id": 0, "_id": 0}) == {
        "status": True,
        "id": False,
        "_id": False,
    }


@pytest.mark.parametrize(
    ("projection", "field"),
    [
        ({"status": 1, "results": 0}, "projection.results"),
        ({"status": 2}, "projection.status"),
        ({"status": "1"}, "projection.status"),
        ({"status": 1.0}, "projection.status"),
        ({"status": None}, "projection.status"),
        ({"status": {"$slice": 1}}, "projection.status"),
        ({"$where": 1}, "projection.$where"),
        ({"a..b": 1}, "projection.a..b"),
        ({"tags.$": 1}, "projection.tags.$"),
        (["status"], "projection"),
        ("status", "projection"),
    ],
)
def test_bad_projections_are_refused(projection: object, field: str) -> None:
    with pytest.raises(FilterRejected) as info:
        check_projection(projection)
    assert info.value.field == field


DOC: dict[str, Any] = {
    "id": "w1",
    "pipeline": "p",
    "status": "queued",
    "config": {"parent": "x", "orgs": ["chimefrb"], "archive": {"results": True}},
    "history": [{"attempt": 1, "outcome": "lost"}, {"attempt": 2, "outcome": "retry"}],
    "results": {"n": 1},
}


def test_inclusion_keeps_listed_paths_and_id() -> None:
    projection = check_projection({"status": 1, "config.parent": 1, "_id": False})
    assert apply_projection(DOC, projection) == {
        "id": "w1",
        "status": "queued",
        "config": {"parent": "x"},
    }


def test_inclusion_can_drop_id() -> None:
    assert apply_projection(DOC, {"status": True, "id": False}) == {"status": "queued"}


def test_inclusion_of_deep_paths_missing_fields_and_arrays_of_documents() -> None:
    projection = {
        "config.archive.results": True,
        "nothing.here": True,
        "history.outcome": True,
        "config": True,
    }
    assert apply_projection(DOC, projection) == {
        "id": "w1",
        "config": DOC["config"],
        "history": [{"outcome": "lost"}, {"outcome": "retry"}],
    }
    assert apply_projection(DOC, {"config": True, "config.parent": True})["config"] == DOC["config"]


def test_exclusion_drops_listed_paths_without_changing_the_document() -> None:
    before = repr(DOC)
    out = apply_projection(
        DOC,
        {
            "results": False,
            "config.orgs": False,
            "history.attempt": False,
            "missing.path": False,
            "_id": False,
        },
    )
    assert out == {
        "id": "w1",
        "pipeline": "p",
        "status": "queued",
        "config": {"parent": "x", "archive": {"results": True}},
        "history": [{"outcome": "lost"}, {"outcome": "retry"}],
    }
    assert repr(DOC) == before


def test_empty_and_id_only_projections_return_the_document() -> None:
    assert apply_projection(DOC, {}) is DOC
    assert apply_projection(DOC, {"_id": False}) is DOC
    assert apply_projection(DOC, {"id": False}) == {k: v for k, v in DOC.items() if k != "id"}
