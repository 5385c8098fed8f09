"""The three engines give the same outputs, and the parallel and Dask engines really run
independent nodes at the same time; ``workflow graph`` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from graph_tasks import link, node

from workflow.graph import ENGINES, execute_graph, load

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

#: Two slow independent branches meeting in one node, then a conditional loop.
FORK = {
    "graph": {"id": "fork"},
    "nodes": [node("left", "Double", x=1, delay=0.6), node("right", "Double", x=2, delay=0.6),
              node("join", "Add"), {**node("count", "Count", limit=8)},
              node("out", "builtins.str", "method")],
    "links": [link("left", "join", ("y", "a")), link("right", "join", ("y", "b")),
              link("join", "count", ("sum", "n")),
              {"source": "count", "target": "count", "map_all_data": True,
               "conditions": [{"source_output": "done", "value": False}]},
              link("count", "out", ("n", "0"),
                   conditions=[{"source_output": "done", "value": True}])],
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_gives_the_same_outputs(engine: str) -> None:
    execution = execute_graph(load(FORK), engine_name=engine, workers=2)
    assert execution.outputs() == {"return_value": "8"}
    assert execution.outputs("all", merge=False) == {
        "left": {"y": 2}, "right": {"y": 4}, "join": {"sum": 6},
        "count": {"n": 8, "done": True}, "out": {"return_value": "8"}}
    runs = {r.node: r for r in execution.runs}
    left, right = runs["left"], runs["right"]
    overlapping = left.started < right.stopped and right.started < left.stopped
    assert overlapping == (engine != "sequential"), (engine, left, right)
    if engine != "sequential":
        assert left.pid != right.pid and left.pid != os.getpid()
    assert [r.run for r in execution.runs if r.node == "count"] == [1, 2]


#: A slow loop feeds ``sum`` over an optional link; a fast node over a required one.
RACE = {
    "nodes": [{**node("loop", "Count", n=0, limit=2, delay=0.4), "force_start_node": True},
              node("fast", "Double", x=1), node("sum", "Add")],
    "links": [{"source": "loop", "target": "loop", "map_all_data": True,
               "conditions": [{"source_output": "done", "value": False}]},
              link("loop", "sum", ("n", "a")), link("fast", "sum", ("y", "b"))],
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_ends_are_handled_in_start_order_whatever_ends_first(engine: str) -> None:
    execution = execute_graph(load(RACE), engine_name=engine, workers=2)
    assert execution.failed is None, execution.failed
    assert [(r.node, r.run) for r in execution.runs] == [
        ("loop", 1), ("fast", 1), ("loop", 2), ("sum", 1), ("sum", 2)]
    assert execution.outputs() == {"sum": 4}


def workflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # This checkout first: run from ``cwd``, ``-m workflow`` would import the installed copy.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    return subprocess.run([sys.executable, "-m", "workflow", "graph", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_graph_commands(tmp_path: Path) -> None:
    (tmp_path / "fork.json").write_text(json.dumps(FORK))
    checked = workflow("validate", "fork.json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == ("fork.json: valid (cyclic, conditional): 5 nodes, 5 links; "
                                      "start left, right; end out")  # fmt: skip
    ran = workflow("run", "fork.json", "-p", "left:x=5", "--engine", "parallel", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"return_value": "15"}
    assert "left (run 1) success in 0.6" in ran.stderr
    every = workflow("run", "fork.json", "--outputs", "all", "-q", cwd=tmp_path)
    assert json.loads(every.stdout)["join"] == {"sum": 6} and every.stderr == ""
    assert workflow("convert", "fork.json", "fork.yaml", cwd=tmp_path).returncode == 0
    again = workflow("run", "fork.yaml", "-q", cwd=tmp_path)
    assert json.loads(again.stdout) == {"return_value": "8"}

    (tmp_path / "broken.json").write_text(json.dumps({"nodes": [node("a", "Fail", x=1)]}))
    failed = workflow("run", "broken.json", cwd=tmp_path)
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines()[-1] == (
        "error: node 'a' (graph_tasks.Fail) failed: ValueError: cannot use 1")
    unknown = workflow("validate", "missing.json", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: no graph file or package resource 'missing.json'"


