"""The web UI's files and its ``/ui`` routes over real HTTP."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
        assert header.startswith('"id","pipeline","status","user","site","tags","event"')
        assert rest == [] and line.startswith(f'"{ids[3]}","exp","failure","ann",')
        assert f'"Bad: bad {ids[3]}"' in line
        assert http.get("/results/export", params={"format": "xml"}).status_code == 422
        bad = http.get("/results/export", params={"sort": "nonsense"})
        assert bad.status_code == 422 and bad.json()["field"] == "sort"


def _snapshot_times(url: str, count: int) -> list[float]:
    """The ``time`` of the first ``count`` snapshots of one stream that asks for one
    every 0.2 s."""
    times: list[float] = []
    with httpx.stream("GET", f"{url}/ui/events", params={"interval": 0.2},
                      timeout=30) as reply:  # fmt: skip
        for line in reply.iter_lines():
            if line.startswith("data: "):
                times.append(orjson.loads(line[6:])["time"])
            if len(times) == count:
                return times
    raise AssertionError(f"the stream ended after {len(times)} snapshots")


def test_every_open_stream_shares_one_snapshot_per_interval(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(env={"WORKFLOW_DASHBOARD_INTERVAL": "0.5"})
    httpx.post(f"{server.url}/buckets/work", json=[{"pipeline": "shared"}],
               timeout=10).raise_for_status()  # fmt: skip
    with ThreadPoolExecutor(6) as pool:
        streams = list(pool.map(lambda _: _snapshot_times(server.url, 4), range(6)))
    for times in streams:
        assert times == sorted(set(times)), "each stream gets each snapshot once, in order"
    computed = sorted({t for times in streams for t in times})
    gaps = [later - earlier for earlier, later in itertools.pairwise(computed)]
    assert len(computed) <= 6 and min(gaps) >= 0.45, (len(computed), gaps)


def _open_stream(http: httpx.Client, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = http.send(http.build_request("GET", "/ui/events", headers=headers), stream=True)
    if reply.status_code != 200:
        reply.read()
    return reply


def _next_event(lines: Iterator[str]) -> dict[str, Any]:
    """The next event of a stream's ``iter_lines()`` (which closes the stream once it is
    dropped: keep it while the stream should stay open)."""
    for line in lines:
        if line.startswith("data: "):
            return orjson.loads(line[6:])  # type: ignore[no-any-return]
    raise AssertionError("the stream ended before its next event")


STREAM_TOKENS = {"vic": "viewer-secret-000000000001", "val": "viewer-secret-000000000002",
                 "ada": "admin-secret-0000000000003"}  # fmt: skip


def test_live_streams_are_capped_per_token_and_in_all(make_server: Callable[..., Server]) -> None:
    vic, val, ada = STREAM_TOKENS.values()
    server = make_server(env={
        "WORKFLOW_ADMIN_TOKENS": f"ada={ada}", "WORKFLOW_VIEWER_TOKENS": f"vic={vic},val={val}",
        "WORKFLOW_DASHBOARD_STREAMS": "3", "WORKFLOW_DASHBOARD_STREAMS_PER_CALLER": "2"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        first, second = _open_stream(http, vic), _open_stream(http, vic)
        assert (first.status_code, second.status_code) == (200, 200)
        first_lines = first.iter_lines()
        assert _next_event(first_lines)["pipelines"] == []
        third = _open_stream(http, vic)
        assert third.status_code == 429
        assert third.json() == {
            "error": "TooManyStreams", "field": "streams", "limit": 2,
            "message": "vic has 2 live streams open already, the most one token may have "
                       "(WORKFLOW_DASHBOARD_STREAMS_PER_CALLER)"}  # fmt: skip
        other = _open_stream(http, val)
        assert other.status_code == 200, "another token has its own streams"
        refused = _open_stream(http, ada)
        assert refused.status_code == 429
        assert refused.json()["limit"] == 3 and refused.json()["field"] == "streams"
        assert "WORKFLOW_DASHBOARD_STREAMS)" in refused.json()["message"]
        auth = {"Authorization": f"Bearer {ada}"}
        assert http.get("/ui/dashboard", headers=auth).status_code == 200, "plain calls pass"
        first.close()
        deadline = time.monotonic() + 5
        while (again := _open_stream(http, ada)).status_code == 429:
            assert time.monotonic() < deadline, "a closed stream gives its seat back"
            time.sleep(0.05)
        assert _next_event(again.iter_lines())["pipelines"] == []
        for reply in (second, other, again):
            reply.close()


def test_an_open_server_caps_streams_per_client(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_DASHBOARD_STREAMS_PER_CALLER": "1"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        first = _open_stream(http)
        assert first.status_code == 200
        second = _open_stream(http)
        assert second.status_code == 429 and second.json()["limit"] == 1
        assert "127.0.0.1 has 1 live stream open already" in second.json()["message"]
        first.close()


def test_fifty_open_streams_leave_other_calls_quick(make_server: Callable[..., Server]) -> None:
    server = make_server(env={"WORKFLOW_DASHBOARD_STREAMS": "60",
                              "WORKFLOW_DASHBOARD_STREAMS_PER_CALLER": "60"})  # fmt: skip
    # 500 pipelines with queued work: a snapshot takes about 0.1 s.
    works = [{"pipeline": f"load-{i}", "function": "m.f"} for i in range(500)]
    httpx.post(f"{server.url}/buckets/work", json=works, timeout=30).raise_for_status()
    live, stop = threading.Semaphore(0), threading.Event()

    def watch() -> None:
        with httpx.stream("GET", f"{server.url}/ui/events", params={"interval": 0.2},
                          timeout=30) as reply:  # fmt: skip
            assert reply.status_code == 200
            for n, _ in enumerate(reply.iter_raw()):
                if n == 0:
                    live.release()
                if stop.is_set():
                    return

    watchers = [threading.Thread(target=watch, daemon=True) for _ in range(50)]
    for thread in watchers:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        for _ in watchers:
            assert live.acquire(timeout=max(0.0, deadline - time.monotonic())), "no snapshot"
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(5):
                started = time.monotonic()
                assert http.get("/buckets/counts").status_code == 200
                took = time.monotonic() - started
                assert took < 1.0, f"/buckets/counts took {took:.2f} s with 50 streams open"
                time.sleep(0.2)
    finally:
        stop.set()
        for thread in watchers:
            thread.join(timeout=10)


def test_dashboard_lists_the_newest_failures_with_their_retry(server: Server) -> None:
    ids = _finish_many(server, [{"pipeline": "fails"} for _ in range(3)],
                       ["failure", "success", "failure"])  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        retry = http.post(f"/buckets/work/{ids[0]}/retry", json={}).json()["id"]
        failures = http.get("/ui/dashboard").json()["failures"]
    assert [f["id"] for f in failures] == [ids[2], ids[0]], "newest first, successes left out"
    assert failures[1]["retried_as"] == retry and failures[0]["retried_as"] is None
    assert failures[0]["error"] == {"type": "Bad", "message": f"bad {ids[2]}", "cut": False}
    assert failures[0]["pipeline"] == "fails" and failures[0]["stop"] > 0
