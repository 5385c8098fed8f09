"""A graph as a work: deposited, run by ``workflow run``, its node runs in the history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_tasks import link, node
from harness import Server

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

GRAPH = {"graph": {"id": "reduce", "engine": "parallel"},
         "nodes": [node("left", "Double", delay=0.5), node("right", "Double", delay=0.5),
                   node("join", "Add")],
         "links": [link("left", "join", ("y", "a")), link("right", "join", ("y", "b"))]}


def _deposit(server: Server, **work: Any) -> str:
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=[{"pipeline": "graphs", "retries": 0, **work}], timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()[0]  # type: ignore[no-any-return]


def _run(server: Server, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKFLOW_URL": server.url, "PYTHONPATH": str(TESTS),
           "XDG_DATA_HOME": str(tmp_path / "xdg")}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "workflow", "run", "graphs", "--burst"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_graph_work_runs_end_to_end_with_its_nodes_in_the_history(server: Server,
                                                                    tmp_path: Path) -> None:
    id = _deposit(server, graph=GRAPH, parameters={"left:x": 1, "right:x": 2})
    failing = _deposit(server, graph={"nodes": [node("first", "Double", x=1),
                                                node("broken", "Fail")],
                                      "links": [link("first", "broken", ("y", "x"))]})
    (tmp_path / "file.json").write_text(json.dumps(GRAPH))
    by_path = _deposit(server, graph=str(tmp_path / "file.json"),
                       parameters={"x": 10})  # to both start nodes
    done = _run(server, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    work = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
    assert work["status"] == "success" and work["results"] == {"sum": 6}
    (attempt,) = work["history"]
    nodes = {n["node"]: n for n in attempt["nodes"]}
    assert set(nodes) == {"left", "right", "join"}
    assert all(n["outcome"] == "success" and n["stopped"] >= n["started"] for n in nodes.values())
    left, right = nodes["left"], nodes["right"]
    assert left["started"] < right["stopped"] and right["started"] < left["stopped"], \
        "the parallel engine ran the branches at the same time"
    assert nodes["join"]["started"] >= max(left["stopped"], right["stopped"])

    failed = httpx.get(f"{server.url}/buckets/work/{failing}", timeout=10).json()
    assert failed["status"] == "failure"
    (attempt,) = failed["history"]
    assert attempt["error"]["type"] == "GraphFailed"
    assert attempt["error"]["message"] == ("node 'broken' (graph_tasks.Fail) failed: "
                                           "ValueError: cannot use 2")  # fmt: skip
    assert [(n["node"], n["outcome"]) for n in attempt["nodes"]] == [
        ("first", "success"), ("broken", "failure")]
    assert attempt["nodes"][1]["error"]["message"] == "cannot use 2"

    from_file = httpx.get(f"{server.url}/buckets/work/{by_path}", timeout=10).json()
    assert from_file["results"] == {"sum": 40}


def test_the_dask_engine_and_a_graph_deposited_from_the_command_line(server: Server,
                                                                      tmp_path: Path) -> None:
    graph = {**GRAPH, "graph": {"id": "reduce", "engine": "dask", "workers": 2}}
    (tmp_path / "reduce.yaml").write_text(json.dumps(graph))
    env = {**os.environ, "WORKFLOW_URL": server.url}
    deposited = subprocess.run(
        [sys.executable, "-m", "workflow", "deposit", "-p", "graphs", "--graph",
         str(tmp_path / "reduce.yaml"), "--param", "left:x=3", "--param", "right:x=4"],
        env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert deposited.returncode == 0, deposited.stderr
    id = deposited.stdout.strip()
    assert httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()["graph"] == graph
    again = _deposit(server, graph=graph, parameters={"left:x": 1, "right:x": 1})
    done = _run(server, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    work = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
    assert work["status"] == "success" and work["results"] == {"sum": 14}
    nodes = {n["node"]: n for n in work["history"][0]["nodes"]}
    left, right = nodes["left"], nodes["right"]
    assert left["started"] < right["stopped"] and right["started"] < left["stopped"], \
        "Dask ran the branches at the same time"
    assert left["pid"] != right["pid"]
    second = httpx.get(f"{server.url}/buckets/work/{again}", timeout=10).json()
    assert second["results"] == {"sum": 4}
    assert {n["pid"] for n in second["history"][0]["nodes"]} <= {left["pid"], right["pid"],
                                                                nodes["join"]["pid"]}, \
        "the runner's second graph ran on the cluster its first started"
    bad = subprocess.run([sys.executable, "-m", "workflow", "deposit", "-p", "graphs",
                          "--graph", str(tmp_path / "reduce.yaml"), "--command", "ls"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "not command and graph" in bad.stderr


def test_graph_attempts_run_in_the_runners_warm_child(server: Server, tmp_path: Path) -> None:
    graph = {"nodes": [node("twice", "Double")]}
    ids = [_deposit(server, graph=graph, parameters={"x": n}) for n in range(3)]
    done = _run(server, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    works = [httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json() for id in ids]
    assert [w["results"] for w in works] == [{"y": 0}, {"y": 2}, {"y": 4}]
    pids = {w["history"][0]["nodes"][0]["pid"] for w in works}
    assert len(pids) == 1, "one warm process ran every graph (the sequential engine)"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has ended


def test_a_graph_over_its_timeout_is_killed_with_its_processes(server: Server,
                                                              tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    graph = {"graph": {"engine": "parallel", "workers": 1},
             "nodes": [node("first", "Double", x=1),
                       node("sleeper", "Sleep", pidfile=str(pidfile), seconds=60)],
             "links": [link("first", "sleeper")]}
    id = _deposit(server, graph=graph, timeout=3)
    after = _deposit(server, graph={"nodes": [node("twice", "Double", x=5)]})
    started = time.monotonic()
    done = _run(server, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    work = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
    (attempt,) = work["history"]
    assert attempt["error"]["type"] == "Timeout"
    assert [(n["node"], n["outcome"]) for n in attempt["nodes"]] == [("first", "success")], \
        "the node run that ended before the kill is kept"
    sleeper = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(sleeper), "the engine's worker process died with the attempt"
    assert httpx.get(f"{server.url}/buckets/work/{after}", timeout=10).json()["results"] == {
        "y": 10}


def test_a_broken_inline_graph_is_refused_at_deposit(server: Server) -> None:
    reply = httpx.post(f"{server.url}/buckets/work", timeout=10, json=[
        {"pipeline": "graphs", "graph": {"nodes": [node("a", "Add")],
                                         "links": [link("a", "b")]}}])  # fmt: skip
    assert reply.status_code == 422
    assert reply.json()["field"] == "works[0].graph"
    assert "links[0]: target 'b' is not a node" in reply.json()["message"]
    both = httpx.post(f"{server.url}/buckets/work", timeout=10, json=[
        {"pipeline": "graphs", "function": "m.f", "graph": {"nodes": []}}])
    assert both.status_code == 422 and "not function and graph" in both.json()["message"]
