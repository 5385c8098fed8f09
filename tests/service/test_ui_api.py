"""The web UI's files and its ``/ui`` routes over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
from harness import Server


def test_the_ui_files_need_no_token_and_its_data_does(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": "alpha-token-0123456789"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        index = http.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert '<script type="module" src="/static/app.js">' in index.text
        for name in ("app.js", "api.js", "dashboard.js", "format.js", "style.css", "icon.svg"):
            assert http.get(f"/static/{name}").status_code == 200, name
        assert http.get("/static/missing.js").status_code == 404
        assert http.get("/static/../../pyproject.toml").status_code == 404
        assert http.get("/ui/dashboard").status_code == 401
        token = {"Authorization": "Bearer alpha-token-0123456789"}
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


def _finish_many(server: Server, works: list[dict[str, object]],
                 outcomes: list[str]) -> list[str]:  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ids = http.post("/buckets/work", params={"return_ids": "true"},
                        json=[{"retries": 0, **w} for w in works]).json()  # fmt: skip
        claimed = http.post("/buckets/withdraw",
                            json={"pipelines": sorted({str(w["pipeline"]) for w in works}),
                                  "limit": len(works)}).json()  # fmt: skip
        by_id = {w["id"]: w for w in claimed}
        body = [{"id": id, "attempt": by_id[id]["attempt"], "status": outcome,
                 **({"error": {"type": "Bad", "message": f"bad {id}"}}
                    if outcome == "failure" else {})}
                for id, outcome in zip(ids, outcomes, strict=True)]  # fmt: skip
        assert all(r["ok"] for r in http.post("/buckets/complete", json={"works": body}).json())
    return ids  # type: ignore[no-any-return]


def test_export_streams_every_match_as_csv_or_json(server: Server) -> None:
    works = [{"pipeline": "exp", "user": "ann" if i % 2 else "bob", "tags": [f"t{i % 3}"],
              "parameters": {"i": i}} for i in range(7)]  # fmt: skip
    ids = _finish_many(server, works, ["failure" if i == 3 else "success" for i in range(7)])
    with httpx.Client(base_url=server.url, timeout=10) as http:
        reply = http.get("/results/export", params={"format": "json", "user": "ann"})
        assert reply.headers["content-disposition"] == 'attachment; filename="results.json"'
        exported = reply.json()
        assert sorted(d["id"] for d in exported) == sorted(ids[i] for i in (1, 3, 5))
        assert [d["creation"] for d in exported] == sorted(
            (d["creation"] for d in exported), reverse=True), "newest first"
        text = http.get("/results/export", params={"status": "failure"}).text
        header, line, *rest = text.splitlines()
        assert header.startswith("id,pipeline,status,user,site,tags,event") and rest == []
        assert line.startswith(f"{ids[3]},exp,failure,ann,") and f"Bad: bad {ids[3]}" in line
        assert http.get("/results/export", params={"format": "xml"}).status_code == 422
        bad = http.get("/results/export", params={"sort": "nonsense"})
        assert bad.status_code == 422 and bad.json()["field"] == "sort"
