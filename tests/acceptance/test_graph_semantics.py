"""Ewoks' semantics in our engines: going on past a failed node (``raise_on_error``
false) with the outputs it set kept, Ewoks' output selectors, tasks whose inputs a
pydantic model validates; and ``workflow graph run``, whose standard output is its JSON
result only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graph_tasks import link, node

from workflow.errors import GraphFailed
from workflow.graph import ENGINES, TaskInputError, execute_graph, load

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

#: Two independent branches: a → b (fails after setting ``early``) → c, and d → e.
BRANCHES = {
    "graph": {"id": "branches"},
    "nodes": [node("a", "Add", a=1), node("b", "Partly"), node("c", "Double"),
              node("d", "Double", x=5), {**node("e", "Add"), "label": "total"}],
    "links": [link("a", "b", ("sum", "x")), link("b", "c", ("early", "x")),
              link("d", "e", ("y", "a"))],
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_going_on_past_a_failure_runs_the_other_branch_and_names_the_failed_node(
        engine: str) -> None:  # fmt: skip
    with pytest.raises(GraphFailed, match="node 'b'"):
        execute_graph(load(BRANCHES), engine_name=engine, workers=2).outputs()
    execution = execute_graph(load(BRANCHES), engine_name=engine, workers=2,
                              raise_on_error=False)  # fmt: skip
    assert sorted(r.node for r in execution.runs) == ["a", "b", "d", "e"], "c is downstream of b"
    assert execution.outputs("all", merge=False) == {
        "a": {"sum": 1}, "b": {"early": 10}, "d": {"y": 10}, "e": {"sum": 10}}
    (failed,) = execution.failed_nodes()
    assert (failed["node"], failed["type"], failed["message"]) == (
        "b", "ValueError", "failed after setting early")
    attribute = {**BRANCHES, "graph": {"id": "branches", "raise_on_error": False}}
    assert execute_graph(load(attribute), engine_name=engine, workers=2).failed_nodes()


def test_ewoks_output_selectors_pick_rename_and_merge() -> None:
    execution = execute_graph(load(BRANCHES), raise_on_error=False)
    assert execution.outputs([{"label": "total", "name": "sum", "new_name": "total"},
                              {"id": "d"}]) == {"total": 10, "y": 10}
    assert execution.outputs([{"task_identifier": "Add"}], merge=False) == {
        "a": {"sum": 1}, "e": {"sum": 10}}
    assert execution.outputs([{"all": True, "name": "y"}], merge=False) == {"d": {"y": 10}}
    assert execution.outputs([{"id": "d", "name": "nope"}]) == {}


def test_an_input_model_validates_and_fills_in_the_inputs() -> None:
    graph = {"nodes": [{**node("s", "Scale", x="3"), "label": "scaler"}], "links": []}
    assert execute_graph(load(graph)).outputs() == {"y": 6.0, "label": "scaler"}
    with_factor = {"nodes": [node("s", "Scale", x=2, factor=0.5)], "links": []}
    assert execute_graph(load(with_factor)).outputs() == {"y": 1.0, "label": "s"}
    bad = {"nodes": [node("s", "Scale", x="three")], "links": []}
    with pytest.raises(GraphFailed, match="TaskInputError: invalid inputs for Scaled: x: "):
        execute_graph(load(bad)).outputs()
    from graph_tasks import Scale

    assert Scale.input_names == {"x"} and Scale.optional_input_names == {"factor"}
    with pytest.raises(TaskInputError, match="missing inputs for Scale: x"):
        Scale({})


def _graph_run(tmp_path: Path, graph: dict[str, Any], *args: str
               ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run([sys.executable, "-m", "workflow", "graph", "run", str(path), *args],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_graph_run_prints_only_its_json_and_takes_the_new_options(tmp_path: Path) -> None:
    noisy = {"nodes": [node("p", "builtins.print", "method", **{"0": "a task's own line"}),
                       node("d", "Double", x=4)],
             "links": []}  # fmt: skip
    done = _graph_run(tmp_path, noisy, "--output", "d:y=doubled")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"doubled": 8}, "standard output holds the JSON only"
    assert "a task's own line" in done.stderr
    failing = _graph_run(tmp_path, BRANCHES)
    assert failing.returncode != 0 and "node 'b'" in failing.stderr
    assert failing.stdout == ""
    going_on = _graph_run(tmp_path, BRANCHES, "--no-raise-on-error", "--outputs", "all")
    assert going_on.returncode == 0, going_on.stderr
    result = json.loads(going_on.stdout)
    assert result["e"] == {"sum": 10} and result["b"] == {"early": 10}
    assert [f["node"] for f in result["failed_nodes"]] == ["b"]
    by_json = _graph_run(tmp_path, BRANCHES, "--no-raise-on-error", "--no-merge",
                         "--output", '{"label": "total"}')  # fmt: skip
    assert json.loads(by_json.stdout)["e"] == {"sum": 10}
    unknown = _graph_run(tmp_path, BRANCHES, "--output", "nosuch")
    assert unknown.returncode == 2 and "no node has the id or label 'nosuch'" in unknown.stderr


def test_a_graph_work_that_goes_on_past_a_failure_succeeds_naming_the_failed_node(
        server: Any, runner: Any) -> None:  # fmt: skip
    import httpx
    from harness import until

    method = lambda id, function, **inputs: node(id, f"usertasks.{function}", "method",  # noqa: E731
                                                 **inputs)  # fmt: skip
    graph = {"graph": {"id": "branches", "raise_on_error": False, "outputs": "all"},
             "nodes": [method("a", "double", x=1), method("b", "boom"), method("c", "double"),
                       method("d", "double", x=5)],
             "links": [link("a", "b", ("return_value", "x")),
                       link("b", "c", ("return_value", "x"))]}  # fmt: skip
    runner("graph-branches")
    (id,) = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=[{"pipeline": "graph-branches", "graph": graph}], timeout=10).json()
    done = until(lambda: (w := httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json())
                 ["status"] in ("success", "failure") and w, 60)  # fmt: skip
    assert done["status"] == "success"
    assert done["results"]["d"] == {"return_value": {"doubled": 10}}
    assert "c" not in done["results"]
    (failed,) = done["results"]["failed_nodes"]
    assert (failed["node"], failed["type"]) == ("b", "ValueError")
    (entry,) = [e for e in done["history"] if e.get("kind") == "attempt"]
    assert entry["reason"] == "nodes-failed" and entry["error"]["type"] == "NodesFailed"
    assert "b: ValueError: bad input" in entry["error"]["message"]
    assert sorted((n["node"], n["outcome"]) for n in entry["nodes"]) == [
        ("a", "success"), ("b", "failure"), ("d", "success")]


def test_node_outputs_are_kept_by_task_and_inputs(tmp_path: Path) -> None:
    from workflow.graph.cache import NodeCache

    cache = NodeCache(str(tmp_path), keep=True, reuse=True)
    spec = ("n", "class", "graph_tasks.Double", "n", None, {}, cache)
    key = cache.key(spec, {"x": 1, "delay": 0})
    assert key == cache.key(spec, {"delay": 0, "x": 1}), "the order of inputs does not count"
    assert key != cache.key(spec, {"x": 2, "delay": 0})
    other = ("n", "class", "graph_tasks.Add", "n", None, {}, cache)
    assert key != cache.key(other, {"x": 1, "delay": 0}), "another task"
    assert cache.key(spec, {"x": object()}) is not None, "what JSON cannot hold, by its pickle"
    assert key is not None and cache.load(key) is None
    cache.store(key, {"y": 2})
    assert cache.load(key) == {"y": 2} and cache.path(key).is_relative_to(tmp_path / "nodes")
    graph = {"nodes": [node("d", "Double", x=3)], "links": []}
    first = execute_graph(load(graph), cache=cache)
    again = execute_graph(load(graph), cache=cache)
    assert [r.reused for r in first.runs] == [False] and [r.reused for r in again.runs] == [True]
    assert again.outputs() == first.outputs() == {"y": 6}
