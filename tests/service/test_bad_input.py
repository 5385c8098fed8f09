"""Malformed requests against a real server: each gets a 4xx JSON error naming the
problem, and none of them changes the store.

One server for the module, seeded with queued, running and finished works of the
``seed`` pipeline. The whole store is read through the API before the bad requests and
again after them (the last test in this file), and the two readings must be equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from harness import Server

#: Results above this many bytes of JSON are refused (kept small so the case is cheap).
RESULTS_LIMIT = 10_000
#: Request bodies above this many bytes are refused (WORKFLOW_MAX_BODY).
MAX_BODY = 1_000_000
#: Stands for "no body" in the table below.
NO_BODY = object()
UNKNOWN = "no-such-work-0000"
SEED = {"pipeline": "seed"}
VIEW_ALL = {"query": {}, "projection": {}, "skip": 0, "limit": 0}


@dataclass
class Seeded:
    """The running server, the ids of its seeded works and the store before the tests."""

    server: Server
    client: httpx.Client
    ids: dict[str, str]
    before: dict[str, Any]


def _snapshot(client: httpx.Client) -> dict[str, Any]:
    """Everything the store holds, as the API shows it."""
    buckets = client.post("/buckets/view", json=VIEW_ALL)
    results = client.post("/results/view", json=VIEW_ALL)
    pipelines = client.get("/buckets/pipelines")
    for reply in (buckets, results, pipelines):
        assert reply.status_code == 200, reply.text
    return {"buckets": buckets.json(), "results": results.json(), "pipelines": pipelines.json()}


def _claim(client: httpx.Client) -> dict[str, Any]:
    reply = client.post("/buckets/withdraw", json={"pipelines": ["seed"], "limit": 1})
    assert reply.status_code == 200, reply.text
    (work,) = reply.json()
    assert work["status"] == "running" and work["attempt"] == 1
    return work  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A real server holding four queued, one running and one finished work."""
    root = tmp_path_factory.mktemp("bad-input")
    server = Server(store=f"sqlite:///{root / 'store.db'}", log=root / "server.log",
                    env={"WORKFLOW_RESULTS_LIMIT": str(RESULTS_LIMIT),
                         "WORKFLOW_MAX_BODY": str(MAX_BODY)})  # fmt: skip
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            works = [{**SEED, "parameters": {"i": i}} for i in range(6)]
            reply = client.post("/buckets/work", params={"return_ids": "true"}, json=works)
            assert reply.status_code == 200, reply.text
            assert len(reply.json()) == 6
            finished = _claim(client)
            done = client.post(
                f"/buckets/work/{finished['id']}/complete",
                json={"attempt": 1, "status": "success", "results": {"ok": True}},
            )
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "success"
            running = _claim(client)
            queued = client.post("/buckets/view", json={**VIEW_ALL, "query": {"status": "queued"}})
            assert queued.status_code == 200, queued.text
            assert len(queued.json()) == 4
            ids = {"queued": queued.json()[0]["id"], "running": running["id"],
                   "finished": finished["id"]}  # fmt: skip
            yield Seeded(server, client, ids, _snapshot(client))
    finally:
        server.stop()


def _work(**fields: Any) -> list[dict[str, Any]]:
    """A deposit body: one ``seed`` work with ``fields`` on top."""
    return [{**SEED, "parameters": {"i": 99}, **fields}]


_big = {"blob": "x" * (RESULTS_LIMIT + 100)}

# (id, method, path, body, status, substrings of field + message)
# ``{queued}``, ``{running}`` and ``{finished}`` in a path or JSON body become the seeded ids.
# A ``bytes`` body is sent raw as application/json.
# fmt: off
CASES: list[tuple[str, str, str, Any, int, list[str]]] = [
    # -- deposit: out-of-range and wrongly typed fields --
    ("priority-9", "POST", "/buckets/work", _work(priority=9), 422, ["priority"]),
    ("priority-0", "POST", "/buckets/work", _work(priority=0), 422, ["priority"]),
    ("priority-string", "POST", "/buckets/work", _work(priority="high"), 422, ["priority"]),
    ("retries-6", "POST", "/buckets/work", _work(retries=6), 422, ["retries"]),
    ("retries-negative", "POST", "/buckets/work", _work(retries=-1), 422, ["retries"]),
    ("timeout-0", "POST", "/buckets/work", _work(timeout=0), 422, ["timeout"]),
    ("timeout-300000", "POST", "/buckets/work", _work(timeout=300000), 422, ["timeout"]),
    ("pipeline-space", "POST", "/buckets/work", _work(pipeline="bad name"), 422, ["pipeline"]),
    ("pipeline-underscore", "POST", "/buckets/work", _work(pipeline="a_b"), 422, ["pipeline"]),
    ("pipeline-empty", "POST", "/buckets/work", _work(pipeline=""), 422, ["pipeline"]),
    ("pipeline-missing", "POST", "/buckets/work", [{"parameters": {"i": 1}}], 422,
     ["pipeline"]),
    ("function-and-command", "POST", "/buckets/work",
     _work(function="mod.fn", command=["echo", "hi"]), 422, ["function", "command"]),
    ("parameters-list", "POST", "/buckets/work", _work(parameters=[1, 2]), 422,
     ["parameters"]),
    ("tags-string", "POST", "/buckets/work", _work(tags="urgent"), 422, ["tags"]),
    ("event-strings", "POST", "/buckets/work", _work(event=["x"]), 422, ["event"]),
    ("unknown-field", "POST", "/buckets/work", _work(priorty=4), 422, ["priorty"]),
    ("bad-id", "POST", "/buckets/work", _work(id="has space"), 422, ["id"]),
    ("body-string", "POST", "/buckets/work", "x", 422, ["works"]),
    ("body-true", "POST", "/buckets/work", True, 422, ["works"]),
    ("body-number", "POST", "/buckets/work", 7, 422, ["works"]),
    ("body-none", "POST", "/buckets/work", None, 422, ["body"]),
    ("body-empty-array", "POST", "/buckets/work", [], 422, ["works"]),
    ("body-array-of-numbers", "POST", "/buckets/work", [1], 422, ["works[0]"]),
    ("malformed-json", "POST", "/buckets/work", b"{bad", 422, ["body", "JSON"]),
    ("results-too-large", "POST", "/buckets/work", _work(results=_big), 413, ["results"]),
    ("duplicate-id", "POST", "/buckets/work", _work(id="{queued}", parameters={"i": -1}), 409,
     ["id"]),
    # -- limits: each refusal names the limit --
    ("body-over-max-body", "POST", "/buckets/work",
     b'[{"pipeline": "seed", "parameters": {"pad": "' + b"x" * MAX_BODY + b'"}}]', 413,
     ["body", str(MAX_BODY), "WORKFLOW_MAX_BODY"]),
    ("deposit-over-10000-works", "POST", "/buckets/work", [SEED] * 10_001, 413,
     ["works", "10000"]),
    ("filter-too-deep", "POST", "/buckets/view",
     {"query": {"$and": [{"$or": [{"$and": [{"$or": [{"$and": [{"$or": [{"$and": [
         {"$or": [{"pipeline": "seed"}]}]}]}]}]}]}]}]}}, 422, ["deeper than the limit of 8"]),
    ("filter-too-many-terms", "POST", "/results/view",
     {"query": {"id": {"$in": [f"id-{i}" for i in range(1001)]}}}, 422,
     ["more than the limit of 1000 terms"]),
    ("complete-over-1000", "POST", "/buckets/complete",
     {"works": [{"id": "x", "attempt": 1, "status": "success"}] * 1001}, 422,
     ["works", "1000"]),
    ("work-page-5000", "GET", "/buckets/work?limit=5000", NO_BODY, 422, ["limit", "1000"]),
    # -- numbers beyond what the store keeps (64-bit integers) --
    ("skip-beyond-int64", "GET", f"/buckets/work?skip={2**70}", NO_BODY, 422, ["skip"]),
    ("event-beyond-int64", "GET", f"/results/works?event={2**70}", NO_BODY, 422, ["event"]),
    ("deposit-event-beyond-int64", "POST", "/buckets/work", _work(event=[2**64]), 422,
     ["event"]),
    ("attempt-beyond-int64", "POST", "/buckets/complete",
     {"works": [{"id": "{running}", "attempt": 2**70, "status": "success"}]}, 422,
     ["attempt"]),
    ("filter-number-beyond-int64", "POST", "/buckets/view", {"query": {"attempt": 2**70}},
     422, ["number", "64-bit"]),
    # -- CHIME withdraw with a Mongo filter: only the safe subset --
    ("filter-where", "POST", "/buckets/work/withdraw",
     {**SEED, "$where": "sleep(1000)"}, 422, ["$where"]),
    ("filter-regex", "POST", "/buckets/work/withdraw",
     {**SEED, "user": {"$regex": ".*"}}, 422, ["$regex", "user"]),
    ("filter-function", "POST", "/buckets/work/withdraw",
     {**SEED, "$function": {"body": "return true", "args": [], "lang": "js"}}, 422,
     ["$function"]),
    ("filter-expr-constant", "POST", "/buckets/work/withdraw",
     {**SEED, "$expr": {"$gt": ["$attempt", 1]}}, 422, ["$expr"]),
    ("filter-expr-operator", "POST", "/buckets/work/withdraw",
     {**SEED, "$expr": {"$add": ["$attempt", "$retries"]}}, 422, ["$expr", "$add"]),
    ("filter-dollar-in-path", "POST", "/buckets/work/withdraw",
     {**SEED, "para$meters.i": 1}, 422, ["para$meters.i"]),
    ("filter-not-object", "POST", "/buckets/work/withdraw", ["seed"], 422,
     ["body", "dictionary"]),
    ("filter-pipeline-regex", "POST", "/buckets/work/withdraw",
     {"pipeline": {"$regex": "se.*"}}, 422, ["pipeline"]),
    ("view-where", "POST", "/buckets/view", {"query": {"$where": "1"}}, 422, ["$where"]),
    ("view-mixed-projection", "POST", "/buckets/view",
     {"query": {}, "projection": {"id": 1, "parameters": 0}}, 422,
     ["projection.parameters", "mix"]),
    ("view-negative-skip", "POST", "/buckets/view", {"query": {}, "skip": -1}, 422, ["skip"]),
    ("results-view-regex", "POST", "/results/view",
     {"query": {"pipeline": {"$regex": "."}}}, 422, ["$regex"]),
    ("results-count-where", "POST", "/results/view/count",
     {"query": {"$where": "1"}}, 422, ["$where"]),
    # -- our withdraw --
    ("withdraw-limit-0", "POST", "/buckets/withdraw", {"pipelines": ["seed"], "limit": 0}, 422,
     ["limit"]),
    ("withdraw-limit-5000", "POST", "/buckets/withdraw",
     {"pipelines": ["seed"], "limit": 5000}, 422, ["limit"]),
    ("withdraw-pipelines-string", "POST", "/buckets/withdraw", {"pipelines": "seed"}, 422,
     ["pipelines"]),
    ("withdraw-unknown-field", "POST", "/buckets/withdraw",
     {"pipelines": ["seed"], "limt": 1}, 422, ["limt"]),
    ("heartbeats-none", "POST", "/buckets/heartbeat", {"works": []}, 422, ["works"]),
    ("heartbeats-attempt-0", "POST", "/buckets/heartbeat",
     {"works": [{"id": "x", "attempt": 0}]}, 422, ["works.0.attempt"]),
    ("heartbeats-lease-negative", "POST", "/buckets/heartbeat",
     {"works": [{"id": "x", "attempt": 1}], "lease": -1}, 422, ["lease"]),
    ("exchange-no-withdraw", "POST", "/buckets/exchange", {"complete": []}, 422, ["withdraw"]),
    ("exchange-limit-0", "POST", "/buckets/exchange", {"withdraw": {"limit": 0}}, 422,
     ["withdraw.limit"]),
    ("exchange-outcome-status", "POST", "/buckets/exchange",
     {"complete": [{"id": "x", "attempt": 1, "status": "maybe"}], "withdraw": {}}, 422,
     ["complete.0.status"]),
    ("exchange-too-many", "POST", "/buckets/exchange",
     {"complete": [{"id": "x", "attempt": 1, "status": "success"}] * 1001, "withdraw": {}},
     422, ["complete"]),
    # -- unknown ids --
    ("heartbeat-unknown", "POST", f"/buckets/work/{UNKNOWN}/heartbeat", {"attempt": 1}, 404,
     ["id", UNKNOWN]),
    ("complete-unknown", "POST", f"/buckets/work/{UNKNOWN}/complete",
     {"attempt": 1, "status": "success"}, 404, ["id", UNKNOWN]),
    ("cancel-unknown", "POST", f"/buckets/work/{UNKNOWN}/cancel", NO_BODY, 404,
     ["id", UNKNOWN]),
    ("get-unknown", "GET", f"/buckets/work/{UNKNOWN}", NO_BODY, 404, ["id", UNKNOWN]),
    ("results-get-unknown", "GET", f"/results/works/{UNKNOWN}", NO_BODY, 404,
     ["id", UNKNOWN]),
    ("delete-unknown", "DELETE", f"/buckets/work?ids={UNKNOWN}", NO_BODY, 404,
     ["ids", UNKNOWN]),
    ("cancel-finished", "POST", "/buckets/work/{finished}/cancel", NO_BODY, 404, ["id"]),
    ("chime-update-unknown", "PUT", "/buckets/work", _work(id=UNKNOWN), 404, [UNKNOWN]),
    # -- stale or impossible state changes --
    ("complete-stale-attempt", "POST", "/buckets/work/{running}/complete",
     {"attempt": 2, "status": "success"}, 409, ["attempt"]),
    ("complete-finished-other-status", "POST", "/buckets/work/{finished}/complete",
     {"attempt": 1, "status": "failure"}, 409, ["status"]),
    ("complete-status-maybe", "POST", "/buckets/work/{running}/complete",
     {"attempt": 1, "status": "maybe"}, 422, ["status"]),
    ("complete-attempt-string", "POST", "/buckets/work/{running}/complete",
     {"attempt": "one", "status": "success"}, 422, ["attempt"]),
    ("complete-results-too-large", "POST", "/buckets/work/{running}/complete",
     {"attempt": 1, "status": "success", "results": _big}, 413, ["results"]),
    ("heartbeat-stale-attempt", "POST", "/buckets/work/{running}/heartbeat", {"attempt": 2},
     409, ["attempt"]),
    ("change-priority-7", "PATCH", "/buckets/work/{queued}", {"priority": 7}, 422,
     ["priority"]),
    ("change-running", "PATCH", "/buckets/work/{running}", {"priority": 4}, 409, ["status"]),
    ("pipeline-defaults-retries-9", "PATCH", "/buckets/pipelines/seed",
     {"defaults": {"retries": 9}}, 422, ["retries"]),
    ("pipeline-unknown-setting", "PATCH", "/buckets/pipelines/seed", {"pasued": True}, 422,
     ["pasued"]),
    # -- results (CHIME's results API is ``POST /results`` under the ``/results`` base) --
    ("search-limit-5000", "GET", "/results/works?limit=5000", NO_BODY, 422, ["limit"]),
    ("search-sort-nonsense", "GET", "/results/works?sort=nonsense", NO_BODY, 422,
     ["sort", "nonsense"]),
    ("search-status-queued", "GET", "/results/works?status=queued", NO_BODY, 422, ["status"]),
    ("results-deposit-queued", "POST", "/results/results",
     [{**SEED, "id": "not-finished-1", "status": "queued"}], 422, ["status"]),
    ("results-deposit-not-array", "POST", "/results/results", {"x": 1}, 422, ["works"]),
]
# fmt: on


def _fill(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with ``{queued}``, ``{running}`` and ``{finished}`` replaced by ids."""
    if isinstance(value, str):
        for name, id in ids.items():
            value = value.replace(f"{{{name}}}", id)
        return value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_the_table_is_large_and_distinct() -> None:
    names = [case[0] for case in CASES]
    requests = [json.dumps(case[1:4], default=repr) for case in CASES]
    assert len(CASES) >= 25
    assert len(set(names)) == len(names)
    assert len(set(requests)) == len(requests)


@pytest.mark.parametrize(("method", "path", "body", "status", "names"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])  # fmt: skip
def test_bad_request_gets_a_4xx_naming_the_problem(
    seeded: Seeded, method: str, path: str, body: Any, status: int, names: list[str]
) -> None:
    path = _fill(path, seeded.ids)
    if body is NO_BODY:
        reply = seeded.client.request(method, path)
    elif isinstance(body, bytes):
        reply = seeded.client.request(method, path, content=body,
                                      headers={"content-type": "application/json"})  # fmt: skip
    else:
        reply = seeded.client.request(method, path, json=_fill(body, seeded.ids))
    described = f"{method} {path} -> {reply.status_code} {reply.text[:500]}"
    assert reply.status_code == status, described
    assert reply.headers["content-type"].startswith("application/json"), described
    error = reply.json()
    assert isinstance(error, dict), described
    assert {"error", "message"} <= set(error), described
    said = f"{error.get('field', '')} {error['message']}"
    for name in names:
        assert name in said, f"{name!r} not named: {described}"


def test_a_chunked_body_over_the_limit_is_refused_too(seeded: Seeded) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'[{"pipeline": "seed", "parameters": {"pad": "'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}]'

    reply = seeded.client.post("/buckets/work", content=chunks(),
                               headers={"content-type": "application/json"})  # fmt: skip
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413 and reply.json()["limit"] == MAX_BODY
    small = seeded.client.post("/buckets/view", content=iter([b'{"query": {"id": "', b'x"}}']),
                               headers={"content-type": "application/json"})  # fmt: skip
    assert small.status_code == 200 and small.json() == []


def test_store_is_unchanged_after_the_bad_requests(seeded: Seeded) -> None:
    # Last in the module: runs after every parametrized case above.
    after = _snapshot(seeded.client)
    assert after == seeded.before
    assert len(after["buckets"]) == 5
    assert len(after["results"]) == 1
