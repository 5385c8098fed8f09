"""The service over real HTTP: tokens, CHIME's update path, start-up refusals."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from harness import Server

ALPHA, BETA = "alpha-token-0123456789", "beta-token-0123456789"
OPERATOR, VIEWER = "operator-token-0123", "viewer-token-01234"


def test_tokens_guard_every_route_but_version(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": f"{ALPHA},{BETA}"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.head("/buckets/version").status_code == 200
        assert http.get("/results/version").status_code == 200
        refused = http.get("/buckets/status")
        assert refused.status_code == 401
        assert refused.json()["error"] == "Unauthorized"
        assert http.get("/buckets/status", headers={"x-access-token": "gamma"}).status_code == 401
        assert http.get("/buckets/status", headers={"x-access-token": BETA}).status_code == 200
        bearer = {"Authorization": f"Bearer {ALPHA}"}
        assert http.post("/results/view", json={}, headers=bearer).status_code == 200
        assert http.post("/buckets/work", json=[{"pipeline": "p"}]).status_code == 401
        assert http.post("/buckets/view", json={}, headers=bearer).json() == []


def test_chime_update_of_a_stale_attempt_gets_409_and_changes_nothing(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/work", json=[{"pipeline": "stale", "retries": 2, "backoff": 0}])
        claim = {"pipelines": ["stale"], "lease": 0.2}
        first = http.post("/buckets/withdraw", json=claim).json()[0]
        time.sleep(0.3)
        http.get("/buckets/audit/expired")
        second = http.post("/buckets/work/withdraw", json={"pipeline": {"$in": ["stale"]}}).json()
        assert second["attempt"] == first["attempt"] + 1
        before = http.get(f"/buckets/work/{first['id']}").json()

        late = {**first, "status": "success", "results": {"late": True}, "stop": time.time()}
        for key in ("history", "lease", "backoff", "not_before"):
            late.pop(key)  # CHIME's client sends only CHIME's fields
        reply = http.put("/buckets/work", json=[late])
        assert reply.status_code == 409
        assert reply.json()["field"] == "attempt"
        assert http.get(f"/buckets/work/{first['id']}").json() == before

        current = {**second, "status": "success", "results": {"on": "time"}}
        assert http.put("/buckets/work", json=[current]).json() is True
        done = http.get(f"/results/works/{first['id']}").json()
        assert (done["status"], done["results"]) == ("success", {"on": "time"})
        assert [e["outcome"] for e in done["history"]] == ["lost", "success"]


def test_chime_update_edits_fields_of_queued_work(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": "True"},
                          json=[{"pipeline": "edit", "tags": ["a"]}]).json()  # fmt: skip
        work = http.get(f"/buckets/work/{id}").json()
        edited = {**work, "tags": ["a", "b"], "priority": 5, "status": "queued"}
        assert http.put("/buckets/work", json=[edited]).json() is True
        after = http.get(f"/buckets/work/{id}").json()
        assert (after["tags"], after["priority"], after["status"]) == (["a", "b"], 5, "queued")
        jump = {**after, "status": "success"}
        reply = http.put("/buckets/work", json=[jump])
        assert reply.status_code == 409 and "queued" in reply.json()["message"]


def test_chime_status_keys_and_counts(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/work", json=[{"pipeline": "st"}, {"pipeline": "st"}])
        work = http.post("/buckets/work/withdraw", json={"pipeline": "st"}).json()
        http.post(f"/buckets/work/{work['id']}/complete", json={"attempt": 1, "status": "success"})
        details = http.get("/buckets/status/details/st").json()
        assert list(details) == ["total", "queued", "running", "success", "failure"]
        assert details == {"total": 2, "queued": 1, "running": 0, "success": 1, "failure": 0}
        assert http.get("/buckets/status/pipelines").json() == ["st"]
        assert http.get("/results/status").json() == {"st": 1}
        assert http.post("/results/view/count", json={"query": {"pipeline": "st"}}).json() == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1"])
def test_serve_refuses_a_public_address_without_tokens(host: str) -> None:
    done = subprocess.run([sys.executable, "-m", "workflow", "serve", "--host", host],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "without access tokens" in lines[0]


def test_unknown_store_scheme_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "workflow", "serve", "--store", "redis://x"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in done.stderr


def test_batch_complete_settles_each_outcome_on_its_own(make_server: Callable[..., Server]
                                                        ) -> None:  # fmt: skip
    server = make_server(env={"WORKFLOW_RESULTS_LIMIT": "1000"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/work", json=[{"pipeline": "many", "retries": 0}] * 3)
        a, b, c = http.post("/buckets/withdraw", json={"pipelines": ["many"], "limit": 3}).json()
        replies = http.post("/buckets/complete", json={"works": [
            {"id": a["id"], "attempt": 1, "status": "success", "results": {"n": 1}},
            {"id": b["id"], "attempt": 2, "status": "success"},
            {"id": "no-such-work", "attempt": 1, "status": "failure"},
            {"id": c["id"], "attempt": 1, "status": "success", "results": {"x": "y" * 2000}},
        ]}).json()  # fmt: skip
        assert [(r["ok"], r.get("status_code")) for r in replies] == [
            (True, None), (False, 409), (False, 404), (False, 413)]
        assert replies[0]["status"] == "success" and replies[3]["field"] == "results"
        assert http.get(f"/results/works/{a['id']}").json()["results"] == {"n": 1}
        assert http.get(f"/buckets/work/{b['id']}").json()["status"] == "running"
        assert http.get(f"/buckets/work/{c['id']}").json()["status"] == "running"
        refused = http.post("/buckets/complete", json={"works": []})
        assert refused.status_code == 422 and refused.json()["field"] == "works"


def test_work_methods_use_the_server_named_by_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow import Work

    monkeypatch.setenv("WORKFLOW_URL", server.url)
    first = Work(pipeline="methods", parameters={"n": 1}, priority=5)
    work_id = first.deposit()
    assert work_id == first.id and first.status == "queued"
    second_id = Work(pipeline="methods", parameters={"n": 2}).deposit()

    taken = Work.withdraw("methods")
    assert taken is not None and (taken.id, taken.status, taken.attempt) == (work_id, "running", 1)
    taken.status, taken.results = "success", {"n": 2}
    done = taken.update()
    assert (done.status, done.results, len(done.history)) == ("success", {"n": 2}, 1)

    queued = Work.withdraw("methods", priority=5)
    assert queued is None  # the other one has priority 3
    other = httpx.get(f"{server.url}/buckets/work/{second_id}").json()
    assert Work.model_validate(other).delete() is True
    assert Work.withdraw("methods") is None


def test_viewers_read_and_operators_act(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": OPERATOR, "WORKFLOW_VIEWER_TOKENS": VIEWER})
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    operator = {"x-access-token": OPERATOR}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        seen = http.get("/ui/whoami", headers=viewer).json()
        assert (seen["name"], seen["role"], seen["open"]) == ("viewer-token-1", "viewer", False)
        assert seen["may"] == {"viewer": True, "runner": False, "operator": False, "admin": False}
        seen = http.get("/ui/whoami", headers=operator).json()
        assert (seen["name"], seen["role"], seen["may"]["admin"]) == ("token-1", "admin", True)
        assert http.get("/ui/whoami").status_code == 401
        assert http.post("/buckets/work", json=[{"pipeline": "p"}], headers=operator).is_success
        for method, path, body in (
            ("GET", "/buckets/counts", None), ("GET", "/results/works", None),
            ("POST", "/buckets/view", {}), ("POST", "/results/view", {}),
            ("POST", "/results/view/count", {}), ("GET", "/ui/dashboard", None),
        ):
            assert http.request(method, path, json=body, headers=viewer).status_code == 200, path
        for method, path, body in (
            ("POST", "/buckets/work", [{"pipeline": "p"}]),
            ("POST", "/buckets/withdraw", {"pipelines": ["p"]}),
            ("POST", "/buckets/complete", {"works": [{"id": "x", "attempt": 1,
                                                      "status": "success"}]}),
            ("POST", "/buckets/exchange", {"withdraw": {"pipelines": ["p"]}}),
            ("POST", "/buckets/heartbeat", {"works": [{"id": "x", "attempt": 1}]}),
            ("POST", "/buckets/pipelines/p/pause", None),
            ("PATCH", "/buckets/pipelines/p", {"paused": True}),
            ("PUT", "/buckets/work", [{"id": "x"}]),
            ("DELETE", "/results/results", None),
            ("POST", "/buckets/bulk", {"action": "cancel", "confirm": 1}),
            ("POST", "/results/retry", {"confirm": 1}),
        ):
            refused = http.request(method, path, json=body, headers=viewer)
            assert refused.status_code == 403, path
            assert refused.json()["error"] == "Forbidden"
        assert http.get("/buckets/counts", headers=operator).json() == {"p": {"queued": 1}}
        assert http.get("/buckets/pipelines/p", headers=viewer).json()["paused"] is False


def test_viewer_tokens_alone_are_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "workflow", "serve"], capture_output=True,
                          text=True, timeout=30,
                          env={**os.environ, "WORKFLOW_VIEWER_TOKENS": VIEWER})  # fmt: skip
    assert done.returncode != 0 and "no token has the operator or admin role" in done.stderr


def test_bulk_errors_name_the_field(shared_server: Server) -> None:
    with httpx.Client(base_url=shared_server.url, timeout=10) as http:
        unknown = http.post("/buckets/bulk", json={"action": "delete"})
        assert unknown.status_code == 422 and unknown.json()["field"] == "action"
        typo = http.post("/buckets/bulk", json={"action": "cancel", "filter": {"pipe": ["x"]}})
        assert typo.status_code == 422 and typo.json()["field"] == "filter.pipe"
        negative = http.post("/results/retry", json={"confirm": -1})
        assert negative.status_code == 422 and negative.json()["field"] == "confirm"
        bad_sort = http.post("/results/retry?sort=nope", json={})
        assert bad_sort.status_code == 422 and bad_sort.json()["field"] == "sort"
