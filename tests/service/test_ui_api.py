"""The web UI's files and its ``/ui`` routes over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
from harness import Server


def test_the_ui_files_need_no_token_and_its_data_does(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": "alpha"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        index = http.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert '<script type="module" src="/static/app.js">' in index.text
        for name in ("app.js", "api.js", "dashboard.js", "format.js", "style.css", "icon.svg"):
            assert http.get(f"/static/{name}").status_code == 200, name
        assert http.get("/static/missing.js").status_code == 404
        assert http.get("/static/../../pyproject.toml").status_code == 404
        assert http.get("/ui/dashboard").status_code == 401
        token = {"Authorization": "Bearer alpha"}
        assert http.get("/ui/dashboard", headers=token).json()["pipelines"] == []


def test_dashboard_counts_ages_and_the_last_hour(server: Server) -> None:
    now = time.time()
    works = [{"pipeline": "dash", "function": "m.f", "retries": 0, "priority": p,
              "creation": now - age} for p, age in ((2, 300), (5, 10), (3, 60))]  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/work", json=works).raise_for_status()
        http.post("/buckets/pipelines/dash/pause").raise_for_status()
        http.post("/buckets/pipelines/dash/resume").raise_for_status()
        claimed = http.post("/buckets/withdraw", json={"pipelines": ["dash"], "limit": 2}).json()
        assert [w["priority"] for w in claimed] == [5, 3]
        outcomes = [{"id": claimed[0]["id"], "attempt": 1, "status": "success"},
                    {"id": claimed[1]["id"], "attempt": 1, "status": "failure",
                     "error": {"type": "E", "message": "m"}}]  # fmt: skip
        assert all(r["ok"] for r in http.post("/buckets/complete",
                                               json={"works": outcomes}).json())  # fmt: skip
        (dash,) = http.get("/ui/dashboard").json()["pipelines"]
    assert dash["name"] == "dash" and dash["paused"] is False
    assert dash["counts"] == {"queued": 1, "success": 1, "failure": 1}
    assert 299 <= dash["oldest_queued_s"] < 330, "the priority-2 work, 300 s old"
    per_minute = dash["per_minute"]
    assert len(per_minute["finished"]) == 60 and sum(per_minute["finished"]) == 2
    assert per_minute["finished"][-1] + per_minute["finished"][-2] == 2, "this minute"
    assert sum(per_minute["failed"]) == 1
    assert dash["finished_last_hour"] == 2 and dash["failure_rate"] == 0.5


def test_events_stream_a_snapshot_every_interval(server: Server) -> None:
    httpx.post(f"{server.url}/buckets/work", json=[{"pipeline": "stream"}],
               timeout=10).raise_for_status()  # fmt: skip
    snapshots = []
    with httpx.stream("GET", f"{server.url}/ui/events", params={"interval": 0.2},
                      timeout=10) as reply:  # fmt: skip
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data: "):
                snapshots.append(orjson.loads(line[6:]))
            if len(snapshots) == 2:
                break
    assert [p["counts"] for p in snapshots[0]["pipelines"]] == [{"queued": 1}]
    assert snapshots[1]["time"] > snapshots[0]["time"]
    assert httpx.get(f"{server.url}/ui/events", params={"interval": 0},
                     timeout=10).status_code == 422  # fmt: skip
