"""Roles mean what they say, against a real server: a runner token reports on the works
it holds and on nothing else, through every route (CHIME's ``PUT /buckets/work``
included); every other change needs an operator and lands in the history under the
token's name. Also: a repeated deposit with other content is a 409, results are
size-checked wherever they enter, and a multi-work update changes all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from harness import Server, running

TOKENS = {"ada": "roles-admin-token-000000001", "otto": "roles-operator-token-00002",
          "rita": "roles-runner-token-0000003", "ria": "roles-runner-token-0000004"}
RESULTS_LIMIT = 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("roles"), {
            "WORKFLOW_ADMIN_TOKENS": f"ada={TOKENS['ada']}",
            "WORKFLOW_OPERATOR_TOKENS": f"otto={TOKENS['otto']}",
            "WORKFLOW_RUNNER_TOKENS": f"rita={TOKENS['rita']},ria={TOKENS['ria']}",
            "WORKFLOW_RESULTS_LIMIT": str(RESULTS_LIMIT)}) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def as_(server: Server) -> Iterator[dict[str, httpx.Client]]:
    clients = {name: httpx.Client(base_url=server.url, timeout=30,
                                  headers={"x-access-token": token})
               for name, token in TOKENS.items()}  # fmt: skip
    yield clients
    for client in clients.values():
        client.close()


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def _claimed(client: httpx.Client, pipeline: str, **work: Any) -> dict[str, Any]:
    _ok(client.post("/buckets/work", json=[{"pipeline": pipeline, "user": "u", **work}]))
    (found,) = _ok(client.post("/buckets/withdraw", json={"pipelines": [pipeline]}))
    return found  # type: ignore[no-any-return]


def test_a_runner_edits_nothing_but_the_report_of_a_work_it_holds(
        as_: dict[str, httpx.Client]) -> None:  # fmt: skip
    rita, ria, otto = as_["rita"], as_["ria"], as_["otto"]
    _ok(rita.post("/buckets/work", json=[{"id": "queued-1", "pipeline": "roles-a",
                                          "user": "u"}]))  # fmt: skip
    queued = _ok(rita.get("/buckets/work/queued-1"))
    for field, value in (("priority", 5), ("retries", 0), ("pipeline", "roles-b"),
                         ("creation", 1.0), ("timeout", 1), ("user", "mallory")):  # fmt: skip
        reply = rita.put("/buckets/work", json=[{**queued, field: value}])
        assert reply.status_code == 403, (field, reply.text)
        assert reply.json()["needs"] == "operator"
    assert _ok(rita.get("/buckets/work/queued-1")) == queued

    held = _claimed(rita, "roles-c")
    for field, value in (("priority", 5), ("user", "mallory"), ("tags", ["x"])):
        assert ria.put("/buckets/work", json=[{**held, field: value}]).status_code == 403
        assert rita.put("/buckets/work", json=[{**held, field: value}]).status_code == 403
    report = {**held, "results": {"progress": 0.5}, "plots": ["p.png"]}
    assert ria.put("/buckets/work", json=[report]).status_code == 403, "not ria's work"
    _ok(rita.put("/buckets/work", json=[report]))
    now = _ok(otto.get(f"/buckets/work/{held['id']}"))
    assert now["results"] == {"progress": 0.5} and now["priority"] == held["priority"]


def test_outcomes_come_only_from_the_token_that_claimed_and_are_recorded_under_it(
        as_: dict[str, httpx.Client]) -> None:  # fmt: skip
    rita, ria = as_["rita"], as_["ria"]
    work = _claimed(rita, "roles-d")
    assert work["lease"]["by"] == "rita"
    outcome = {"attempt": 1, "status": "success", "results": {"forged": True}}
    forged = ria.post(f"/buckets/work/{work['id']}/complete", json=outcome)
    assert forged.status_code == 403 and forged.json()["field"] == "token"
    (refused,) = _ok(ria.post("/buckets/complete", json={"works": [{"id": work["id"],
                                                                     **outcome}]}))
    assert refused["status_code"] == 403
    assert ria.post(f"/buckets/work/{work['id']}/heartbeat",
                    json={"attempt": 1}).status_code == 403  # fmt: skip
    assert ria.post(f"/buckets/work/{work['id']}/release",
                    json={"attempt": 1}).status_code == 403  # fmt: skip
    chime_forged = {**work, "status": "success", "results": {"forged": True}}
    assert ria.put("/buckets/work", json=[chime_forged]).status_code == 403
    _ok(rita.post(f"/buckets/work/{work['id']}/complete",
                  json={"attempt": 1, "status": "success", "results": {"real": True}}))
    done = _ok(rita.get(f"/buckets/work/{work['id']}"))
    assert done["results"] == {"real": True}
    assert done["history"][-1]["by"] == "rita" and done["history"][-1]["runner"] is None


def test_an_operators_edit_is_recorded_under_its_name(as_: dict[str, httpx.Client]) -> None:
    otto, rita = as_["otto"], as_["rita"]
    _ok(rita.post("/buckets/work", json=[{"id": "edited-1", "pipeline": "roles-e",
                                          "user": "u"}]))  # fmt: skip
    stored = _ok(otto.get("/buckets/work/edited-1"))
    _ok(otto.put("/buckets/work", json=[{**stored, "priority": 5, "pipeline": "roles-f"}]))
    now = _ok(otto.get("/buckets/work/edited-1"))
    assert (now["priority"], now["pipeline"]) == (5, "roles-f")
    (entry,) = now["history"]
    assert entry["action"] == "edit" and entry["by"] == "otto"
    assert entry["changes"] == {"priority": 5, "pipeline": "roles-f"}


def test_a_multi_work_update_changes_all_or_nothing(as_: dict[str, httpx.Client]) -> None:
    otto = as_["otto"]
    _ok(otto.post("/buckets/work", json=[{"id": "multi-1", "pipeline": "roles-g",
                                          "user": "u", "priority": 1}]))  # fmt: skip
    first = _ok(otto.get("/buckets/work/multi-1"))
    reply = otto.put("/buckets/work", json=[{**first, "priority": 4},
                                            {**first, "id": "no-such-work"}])  # fmt: skip
    assert reply.status_code == 404, reply.text
    assert _ok(otto.get("/buckets/work/multi-1"))["priority"] == 1


def test_a_repeated_id_with_other_content_is_a_conflict(as_: dict[str, httpx.Client]) -> None:
    rita = as_["rita"]
    work = {"id": "repeat-1", "pipeline": "roles-h", "user": "u", "creation": 1e9,
            "parameters": {"a": 1}}
    assert _ok(rita.post("/buckets/work?return_ids=true", json=[work])) == ["repeat-1"]
    assert _ok(rita.post("/buckets/work?return_ids=true", json=[work])) == ["repeat-1"]
    for field, value in (("priority", 5), ("retries", 0), ("timeout", 10), ("tags", ["t"]),
                         ("results", {"r": 1}), ("config", {"archive": {"results": False}}),
                         ("function", "os.getcwd"), ("site", "elsewhere")):  # fmt: skip
        reply = rita.post("/buckets/work", json=[{**work, field: value}])
        assert reply.status_code == 409, (field, reply.text)
        assert reply.json()["error"] == "DuplicateWork"
    (claimed,) = _ok(rita.post("/buckets/withdraw", json={"pipelines": ["roles-h"]}))
    _ok(rita.post("/buckets/work/repeat-1/complete",
                  json={"attempt": 1, "status": "success", "results": {"out": 1}}))
    assert _ok(rita.post("/buckets/work?return_ids=true", json=[work])) == ["repeat-1"], \
        "a true repeat of a finished work"


def test_a_work_without_a_user_is_recorded_under_the_depositing_token(
        as_: dict[str, httpx.Client]) -> None:  # fmt: skip
    (id,) = _ok(as_["rita"].post("/buckets/work?return_ids=true", json=[{"pipeline": "roles-i"}]))
    assert _ok(as_["rita"].get(f"/buckets/work/{id}"))["user"] == "rita"
    finished = {"id": "posted-1", "pipeline": "roles-i", "status": "success", "attempt": 1}
    _ok(as_["rita"].post("/results/results", json=[finished]))
    assert _ok(as_["rita"].get("/results/works/posted-1"))["user"] == "rita"


def test_results_are_size_checked_wherever_they_enter(as_: dict[str, httpx.Client]) -> None:
    rita, otto = as_["rita"], as_["otto"]
    large = {"blob": "x" * (RESULTS_LIMIT + 10)}
    held = _claimed(rita, "roles-j")
    assert rita.put("/buckets/work", json=[{**held, "results": large}]).status_code == 413
    finished = {"id": "big-1", "pipeline": "roles-j", "status": "success", "attempt": 1,
                "user": "u"}
    assert rita.post("/results/results", json=[{**finished, "results": large}]).status_code \
        == 413
    _ok(rita.post("/results/results", json=[finished]))
    assert otto.put("/results/results", json=[{**finished, "results": large}]).status_code \
        == 413
    assert _ok(otto.get("/results/works/big-1")).get("results") is None
