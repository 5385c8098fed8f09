"""``compile_query`` against a real in-memory SQLite database, with Mongo semantics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workflow.errors import FilterRejected
from workflow.filters import check_filter
from workflow.store.sqlite_query import compile_query, json_path

COLUMNS = {"id": "id", "pipeline": "pipeline", "status": "status", "priority": "priority",
           "creation": "creation"}  # fmt: skip

DOCS: list[dict[str, Any]] = [
    {"id": "w1", "pipeline": "alpha", "status": "queued", "priority": 3, "creation": 1.0,
     "site": "chime", "tags": ["a", "b"], "event": [123], "attempt": 0, "retries": 2,
     "config": {"parent": "p1", "orgs": ["chimefrb"], "teams": None},
     "results": {"locked": True}},
    {"id": "w2", "pipeline": "alpha", "status": "running", "priority": 5, "creation": 2.0,
     "site": "chime", "tags": ["b"], "event": [123, 456], "attempt": 2, "retries": 2,
     "config": {"parent": None, "orgs": ["chimefrb", "other"]},
     "results": {"locked": False}},
    {"id": "w3", "pipeline": "beta", "status": "failure", "priority": 1, "creation": 3.0,
     "site": "kko", "tags": [], "event": [], "attempt": 3, "retries": 2,
     "config": {"parent": "p1"}, "results": None},
    {"id": "w4", "pipeline": "beta", "status": "success", "priority": 2, "creation": 4.0,
     "site": "chime", "tags": None, "event": [789], "attempt": 1, "retries": 0,
     "results": {"locked": True, "n": 5}},
    {"id": "w5", "pipeline": "gamma", "status": "queued", "priority": 4, "creation": 5.0,
     "event": [123], "attempt": 0, "retries": 0,
     "config": {"parent": "p2", "teams": ["t1"]}, "results": {"n": "5"}},
    {"id": "w6", "pipeline": "gamma", "status": "cancelled", "priority": 3, "creation": 6.5,
     "site": None, "tags": ["a", None], "event": [1], "attempt": 5, "retries": 1,
     "config": {"parent": "p2"}},
    {"id": "w7", "pipeline": "alpha", "status": "queued", "priority": 3, "creation": 7.0,
     "site": "chime", "tags": ["c"], "attempt": 1, "retries": 3,
     "parameters": {"x": 1.5, "name": "é", "pair": [1, "é"]}},
    {"id": "w8", "pipeline": "delta", "status": "queued", "priority": None, "creation": 8.0,
     "site": "kko", "tags": ["a"], "event": [456], "attempt": 0, "retries": 1,
     "parameters": {"x": "2", "pair": [1, 2]}},
    {"id": "w9", "pipeline": "delta", "status": "failure", "priority": 0, "creation": 9.0,
     "site": "chime", "tags": ["b", "a"], "event": [456, 123], "attempt": 2, "retries": 1,
     "parameters": {"x": 3, "pair": [1, "é"], "sub": {"k": [1, 2]}}},
    {"id": "w10", "pipeline": "alpha", "status": "running", "priority": 3, "creation": 10.0,
     "tags": "a", "event": [123], "attempt": 1, "retries": 1,
     "parameters": {"x": True, "sub": {"k": [1, 2], "j": 0}}},
]  # fmt: skip
ALL = {doc["id"] for doc in DOCS}


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    """The documents in a ``work`` table; w7 is stored with raw (unescaped) UTF-8."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE work(id TEXT PRIMARY KEY, pipeline TEXT, status TEXT, "
        "priority INTEGER, creation REAL, doc TEXT)"
    )
    for doc in DOCS:
        text = json.dumps(doc, ensure_ascii=doc["id"] != "w7")
        conn.execute(
            "INSERT INTO work VALUES (?, ?, ?, ?, ?, ?)",
            [doc["id"], doc["pipeline"], doc["status"], doc["priority"], doc["creation"], text],
        )
    yield conn
    conn.close()


@pytest.fixture
def find(db: sqlite3.Connection) -> Callable[[dict[str, Any]], set[str]]:
    """Ids matching a checked filter, the same whether fields use columns or JSON."""

    def run(query: dict[str, Any]) -> set[str]:
        check_filter(query)
        found = []
        for columns in (COLUMNS, {}):
            sql, params = compile_query(query, columns)
            rows = db.execute(f"SELECT id FROM work WHERE {sql}", params).fetchall()
            found.append({row[0] for row in rows})
        assert found[0] == found[1], f"columns and JSON disagree for {query}"
        return found[0]

    return run


Find = Callable[[dict[str, Any]], set[str]]


def test_empty_query_matches_everything(find: Find) -> None:
    assert compile_query({}, COLUMNS) == ("1", [])
    assert find({}) == ALL


def test_mapped_fields_use_their_columns() -> None:
    sql, params = compile_query({"status": "queued", "site": "chime"}, COLUMNS)
    assert "status = ?" in sql
    assert """json_extract(doc, '$."site"')""" in sql
    assert params == ["queued", "chime"]


def test_mapped_columns_let_sqlite_use_their_indexes(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX work_status ON work (status)")
    sql, params = compile_query({"status": {"$in": ["queued"]}, "site": "chime"}, COLUMNS)
    plan = " ".join(
        row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM work WHERE {sql}", params)
    )
    assert "work_status" in plan


def test_scalar_equality(find: Find) -> None:
    assert find({"status": "queued"}) == {"w1", "w5", "w7", "w8"}
    assert find({"site": "kko"}) == {"w3", "w8"}
    assert find({"priority": 3}) == {"w1", "w6", "w7", "w10"}
    assert find({"creation": 6.5}) == {"w6"}
    assert find({"status": {"$eq": "failure"}}) == {"w3", "w9"}
    assert find({"status": "queued", "pipeline": "alpha", "priority": 3}) == {"w1", "w7"}


def test_equality_is_type_strict_between_text_and_numbers(find: Find) -> None:
    assert find({"parameters.x": "2"}) == {"w8"}
    assert find({"parameters.x": 2}) == set()
    assert find({"results.n": 5}) == {"w4"}
    assert find({"results.n": "5"}) == {"w5"}


def test_booleans_and_dotted_paths(find: Find) -> None:
    assert find({"results.locked": True}) == {"w1", "w4"}
    assert find({"results.locked": False}) == {"w2"}
    assert find({"config.parent": "p1"}) == {"w1", "w3"}
    assert find({"parameters.sub.sub": 1}) == set()


def test_none_matches_null_and_missing(find: Find) -> None:
    assert find({"site": None}) == {"w5", "w6", "w10"}
    assert find({"config.parent": None}) == {"w2", "w4", "w7", "w8", "w9", "w10"}
    assert find({"priority": None}) == {"w8"}
    assert find({"results.locked": {"$eq": None}}) == {"w3", "w5", "w6", "w7", "w8", "w9", "w10"}


def test_array_fields_match_any_element(find: Find) -> None:
    assert find({"tags": "a"}) == {"w1", "w6", "w8", "w9", "w10"}
    assert find({"event": 123}) == {"w1", "w2", "w5", "w9", "w10"}
    assert find({"config.orgs": "other"}) == {"w2"}
    assert find({"config.teams": "t1"}) == {"w5"}
    # null: missing, null, or an array holding null
    assert find({"tags": None}) == {"w4", "w5", "w6"}


def test_exact_array_and_document_equality(find: Find) -> None:
    assert find({"event": [123]}) == {"w1", "w5", "w10"}
    assert find({"event": [123, 456]}) == {"w2"}
    assert find({"event": [456, 123]}) == {"w9"}
    assert find({"tags": []}) == {"w3"}
    assert find({"parameters.pair": [1, "é"]}) == {"w7", "w9"}  # escaped and raw UTF-8
    assert find({"parameters.sub": {"k": [1, 2]}}) == {"w9"}
    assert find({"parameters.sub": {"k": [1, 2], "j": 0}}) == {"w10"}
    assert find({"parameters.sub": {"j": 0, "k": [1, 2]}}) == set()  # Mongo: order matters
    assert find({"status": {"$eq": ["queued"]}}) == set()


def test_in(find: Find) -> None:
    assert find({"pipeline": {"$in": ["beta", "delta"]}}) == {"w3", "w4", "w8", "w9"}
    assert find({"priority": {"$in": [0, 5]}}) == {"w2", "w9"}
    assert find({"site": {"$in": ["kko", None]}}) == {"w3", "w5", "w6", "w8", "w10"}
    assert find({"site": {"$in": [None]}}) == {"w5", "w6", "w10"}
    assert find({"status": {"$in": []}}) == set()
    assert find({"results.locked": {"$in": [False]}}) == {"w2"}


def test_in_on_arrays(find: Find) -> None:
    assert find({"tags": {"$in": ["c", "b"]}}) == {"w1", "w2", "w7", "w9"}
    assert find({"event": {"$in": [789, 1]}}) == {"w4", "w6"}
    assert find({"tags": {"$in": [None]}}) == {"w4", "w5", "w6"}
    assert find({"tags": {"$in": ["c", None]}}) == {"w4", "w5", "w6", "w7"}
    assert find({"config.orgs": {"$in": ["chimefrb"]}}) == {"w1", "w2"}


def test_nin(find: Find) -> None:
    assert find({"site": {"$nin": ["chime"]}}) == {"w3", "w5", "w6", "w8", "w10"}
    assert find({"site": {"$nin": ["chime", None]}}) == {"w3", "w8"}
    assert find({"status": {"$nin": []}}) == ALL
    assert find({"priority": {"$nin": [3]}}) == {"w2", "w3", "w4", "w5", "w8", "w9"}


def test_nin_on_arrays(find: Find) -> None:
    assert find({"tags": {"$nin": ["a", "b"]}}) == {"w3", "w4", "w5", "w7"}
    assert find({"tags": {"$nin": ["a", None]}}) == {"w2", "w3", "w7"}
    assert find({"event": {"$nin": [123]}}) == {"w3", "w4", "w6", "w7", "w8"}


def test_ne(find: Find) -> None:
    assert find({"site": {"$ne": "chime"}}) == {"w3", "w5", "w6", "w8", "w10"}
    assert find({"site": {"$ne": None}}) == {"w1", "w2", "w3", "w4", "w7", "w8", "w9"}
    assert find({"priority": {"$ne": 3}}) == {"w2", "w3", "w4", "w5", "w8", "w9"}
    assert find({"results.locked": {"$ne": True}}) == ALL - {"w1", "w4"}
    assert find({"tags": {"$ne": "a"}}) == {"w2", "w3", "w4", "w5", "w7"}
    assert find({"tags": {"$ne": None}}) == {"w1", "w2", "w3", "w7", "w8", "w9", "w10"}
    assert find({"event": {"$ne": [123]}}) == ALL - {"w1", "w5", "w10"}


def test_ranges(find: Find) -> None:
    assert find({"priority": {"$gt": 3}}) == {"w2", "w5"}
    assert find({"priority": {"$gte": 3}}) == {"w1", "w2", "w5", "w6", "w7", "w10"}
    assert find({"priority": {"$lt": 2}}) == {"w3", "w9"}
    assert find({"priority": {"$lte": 2}}) == {"w3", "w4", "w9"}
    assert find({"creation": {"$gt": 6.0, "$lte": 9.0}}) == {"w6", "w7", "w8", "w9"}
    assert find({"attempt": {"$gte": 3}}) == {"w3", "w6"}
    assert find({"pipeline": {"$lt": "beta"}}) == {"w1", "w2", "w7", "w10"}


def test_ranges_skip_null_missing_and_other_types(find: Find) -> None:
    assert find({"priority": {"$lt": 100}}) == ALL - {"w8"}
    assert find({"parameters.x": {"$gt": 1}}) == {"w7", "w9"}  # not "2", not true
    assert find({"parameters.x": {"$gt": "1"}}) == {"w8"}
    assert find({"results.locked": {"$gt": False}}) == {"w1", "w4"}
    assert find({"site": {"$gt": None}}) == set()
    assert find({"site": {"$gte": None}}) == {"w5", "w6", "w10"}


def test_ranges_on_arrays(find: Find) -> None:
    assert find({"event": {"$gt": 500}}) == {"w4"}
    assert find({"event": {"$lte": 1}}) == {"w6"}
    assert find({"tags": {"$gte": "c"}}) == {"w7"}


def test_exists(find: Find) -> None:
    assert find({"parameters": {"$exists": True}}) == {"w7", "w8", "w9", "w10"}
    assert find({"config": {"$exists": False}}) == {"w4", "w7", "w8", "w9", "w10"}
    # null counts as present for JSON fields
    assert find({"site": {"$exists": False}}) == {"w5", "w10"}
    assert find({"config.teams": {"$exists": True}}) == {"w1", "w5"}


def test_exists_on_a_column_cannot_tell_null_from_missing(db: sqlite3.Connection) -> None:
    sql, params = compile_query({"priority": {"$exists": False}}, COLUMNS)
    assert {r[0] for r in db.execute(f"SELECT id FROM work WHERE {sql}", params)} == {"w8"}


def test_expr_compares_two_fields(find: Find) -> None:
    assert find({"$expr": {"$gte": ["$attempt", "$retries"]}}) == ALL - {"w1", "w7", "w8"}
    assert find({"$expr": {"$lt": ["$attempt", "$retries"]}}) == {"w1", "w7", "w8"}
    assert find({"$expr": {"$eq": ["$attempt", "$retries"]}}) == {"w2", "w5", "w10"}
    assert find({"$expr": {"$ne": ["$attempt", "$retries"]}}) == ALL - {"w2", "w5", "w10"}
    higher = {"w1", "w2", "w4", "w5", "w7", "w10"}
    assert find({"$expr": {"$gt": ["$priority", "$attempt"]}}) == higher
    assert find({"$expr": {"$lt": ["$priority", "$attempt"]}}) == {"w3", "w6", "w8", "w9"}


def test_expr_orders_null_and_missing_lowest_as_mongo_aggregation(find: Find) -> None:
    assert find({"$expr": {"$gt": ["$attempt", "$nothing"]}}) == ALL
    assert find({"$expr": {"$lt": ["$attempt", "$nothing"]}}) == set()
    assert find({"$expr": {"$gte": ["$nothing", "$attempt"]}}) == set()
    assert find({"$expr": {"$lte": ["$nothing", "$site"]}}) == ALL
    assert find({"$expr": {"$eq": ["$site", "$nothing"]}}) == {"w5", "w6", "w10"}
    assert find({"$expr": {"$ne": ["$site", "$nothing"]}}) == ALL - {"w5", "w6", "w10"}


def test_expr_in_the_chime_transfer_shape(find: Find) -> None:
    assert find(
        {"status": "failure", "$expr": {"$gte": ["$attempt", "$retries"]}, "creation": {"$gt": 1.0}}
    ) == {"w3", "w9"}


def test_and_or_nesting(find: Find) -> None:
    assert find({"$or": [{"status": "running"}, {"site": "kko"}]}) == {"w2", "w3", "w8", "w10"}
    assert find({"$and": [{"pipeline": "alpha"}, {"tags": "b"}]}) == {"w1", "w2"}
    query = {
        "pipeline": {"$in": ["alpha", "delta"]},
        "$or": [{"$and": [{"tags": "a"}, {"priority": {"$gte": 3}}]}, {"event": [456]}],
    }
    assert find(query) == {"w1", "w8", "w10"}
    nested = {"$or": [{"$or": [{"id": "w1"}, {"id": "w2"}]}, {"id": "w3"}]}
    assert find(nested) == {"w1", "w2", "w3"}


def test_chime_shapes(find: Find) -> None:
    assert find(
        {
            "pipeline": {"$in": ["alpha"]},
            "site": "chime",
            "priority": 3,
            "event": {"$in": [123]},
            "tags": {"$in": ["a"]},
            "config.parent": {"$in": ["p1"]},
        }
    ) == {"w1"}
    assert find({"id": {"$in": ["w4", "w11"]}}) == {"w4"}
    assert find({"event": [123], "status": "queued"}) == {"w1", "w5"}


def test_values_are_bound_not_interpolated(find: Find) -> None:
    sneaky = "x' OR 1=1 --"
    sql, params = compile_query({"site": sneaky, "tags": {"$in": [sneaky]}}, COLUMNS)
    assert sneaky not in sql
    assert params == [sneaky, sneaky]
    assert find({"site": sneaky}) == set()


def test_json_paths_are_quoted_and_checked() -> None:
    assert json_path("config.parent") == '$."config"."parent"'
    with pytest.raises(FilterRejected):
        json_path("a'); DROP TABLE work; --")
    with pytest.raises(FilterRejected):
        compile_query({"a..b": 1}, COLUMNS)
    with pytest.raises(ValueError):
        compile_query({}, COLUMNS, doc="doc; DROP TABLE work")


def test_unsupported_operators_are_refused_by_the_compiler_too() -> None:
    with pytest.raises(FilterRejected) as info:
        compile_query({"tags": {"$regex": "a"}}, COLUMNS)
    assert info.value.details["operator"] == "$regex"
    with pytest.raises(FilterRejected):
        compile_query({"$where": "1"}, COLUMNS)
