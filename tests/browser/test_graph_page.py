"""A graph work run by a real runner: the work page draws its graph with each node's
state and timing, and the node runs on one time axis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from graph_tasks import link, node
from harness import Server

TESTS = Path(__file__).resolve().parents[1]
LOOP = {"source": "count", "target": "count", "map_all_data": True,
        "conditions": [{"source_output": "done", "value": False}]}
GRAPH = {"graph": {"id": "reduce", "engine": "parallel"},
         "nodes": [node("left", "Double", delay=0.6), node("right", "Double", delay=0.6),
                   node("join", "Add"), node("count", "Count", limit=8),
                   node("bad", "Fail"), node("rescue", "builtins.dict", "method")],
         "links": [link("left", "join", ("y", "a")), link("right", "join", ("y", "b")),
                   link("join", "count", ("sum", "n")), LOOP,
                   link("count", "bad", ("n", "x"), conditions=[{"source_output": "done",
                                                                 "value": True}]),
                   link("bad", "rescue", ("WorkflowException", "error"), on_error=True)]}


def test_the_work_page_draws_the_graph_with_node_states(server: Server, page: Any, shoot: Any,
                                                        tmp_path: Path) -> None:  # fmt: skip
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, timeout=10,
                       json=[{"pipeline": "graphs", "retries": 0, "graph": GRAPH,
                              "parameters": {"left:x": 1, "right:x": 2}}])  # fmt: skip
    (id,) = reply.json()
    env = {**os.environ, "WORKFLOW_URL": server.url, "PYTHONPATH": str(TESTS),
           "XDG_DATA_HOME": str(tmp_path / "xdg")}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "workflow", "run", "graphs", "--burst"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    work = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
    assert work["status"] == "success", work["history"]

    page.goto(f"{server.url}/#/work/{id}")
    graph = page.locator("svg.graph")
    graph.wait_for()
    states = {n: graph.locator(f'[data-node="{n}"]').get_attribute("data-state")
              for n in ("left", "right", "join", "count", "bad", "rescue")}  # fmt: skip
    assert states == {"left": "success", "right": "success", "join": "success",
                      "count": "success", "bad": "failure", "rescue": "success"}
    assert "2 runs" in graph.locator('[data-node="count"] .timing').text_content()
    assert graph.locator("path.edge.conditional").count() == 2
    assert graph.locator("path.edge.error").count() == 1
    assert "ValueError: cannot use 8" in graph.locator('[data-node="bad"] title').text_content()

    rows = page.locator(".node-runs tbody tr")
    assert rows.count() == 7
    bars = {r: page.locator(f'[data-node-run="{r}#1"] .gantt span').evaluate(
        "e => [e.getBoundingClientRect().left, e.getBoundingClientRect().right]")
        for r in ("left", "right", "join")}  # fmt: skip
    assert bars["left"][0] < bars["right"][1] and bars["right"][0] < bars["left"][1], \
        "the branches overlap on the time axis"
    assert bars["join"][0] >= max(bars["left"][1], bars["right"][1]) - 1
    assert "cannot use 8" in page.locator('[data-node-run="bad#1"] .error').inner_text()
    shoot(page, "graph")
