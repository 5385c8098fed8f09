"""Graphs: loading the Ewoks format, the checks, and the scheduler's semantics (run with
the sequential engine, in this process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graph_tasks import link, node

from workflow.errors import InvalidGraph
from workflow.graph import MISSING_DATA, GraphFailed, Task, TaskInputError, execute_graph, load


def run(raw: dict[str, Any], which: str = "end", **parameters: Any) -> dict[str, Any]:
    graph = load(raw).with_parameters(parameters)
    return execute_graph(graph).outputs(which, merge=which == "end")  # type: ignore[arg-type]


def test_a_chain_passes_data_along_and_inputs_reach_start_nodes() -> None:
    graph = {"nodes": [node("a", "Add", b=1), node("d", "Double"),
                       node("m", "operator.mul", "method", **{"1": 10})],
             "links": [link("a", "d", ("sum", "x")), link("d", "m", ("y", "0"))]}
    assert run(graph, a=4) == {"return_value": 100}
    assert run(graph, "all", a=4) == {"a": {"sum": 5}, "d": {"y": 10}, "m": {"return_value": 100}}
    assert run(graph, **{"a": 4, "a:b": 2}) == {"return_value": 120}, "addressed by node id"


def test_link_values_beat_default_inputs_and_map_all_data_passes_everything() -> None:
    graph = {"nodes": [node("a", "Add", a=1, b=2), node("b", "Add", a=100, b=5)],
             "links": [{"source": "a", "target": "b", "map_all_data": True}]}
    with pytest.raises(InvalidGraph):
        load({**graph, "links": [{**graph["links"][0], "data_mapping": [
            {"source_output": "sum", "target_input": "a"}]}]})
    graph["links"] = [link("a", "b", ("sum", "a"))]
    assert run(graph) == {"sum": 8}


def test_conditions_pick_a_branch_and_else_takes_the_rest() -> None:
    graph = {"nodes": [node("c", "Count", n=0),
                       node("low", "builtins.str", "method", **{"0": "low"}),
                       node("high", "builtins.str", "method", **{"0": "high"})],
             "links": [link("c", "low", conditions=[{"source_output": "n", "value": 1}]),
                       link("c", "high", conditions=[{"source_output": "n", "value": None}])]}
    assert run(graph) == {"return_value": "low"}
    assert run(graph, n=5) == {"return_value": "high"}, "else: any value not named"


def test_a_loop_runs_until_its_condition_fails_and_an_endless_one_is_stopped() -> None:
    loop = {"nodes": [{**node("c", "Count", n=0, limit=4), "force_start_node": True},
                      node("out", "builtins.int", "method")],
            "links": [{"source": "c", "target": "c", "map_all_data": True,
                       "conditions": [{"source_output": "done", "value": False}]},
                      link("c", "out", ("n", "0"), conditions=[{"source_output": "done",
                                                                 "value": True}])]}
    execution = execute_graph(load(loop))
    assert execution.outputs() == {"return_value": 4}
    assert [(r.node, r.run) for r in execution.runs][-2:] == [("c", 4), ("out", 1)]
    endless = execute_graph(load(loop).with_parameters({"limit": 10**9}), max_runs=20)
    with pytest.raises(GraphFailed, match="would run more than 20 times"):
        endless.outputs()


def test_a_failing_node_fails_the_graph_unless_an_error_link_handles_it() -> None:
    graph = {"nodes": [node("bad", "Fail", x=3), node("after", "Double", x=1)],
             "links": [link("bad", "after", ("y", "x"))]}
    with pytest.raises(GraphFailed) as failed:
        run(graph)
    assert failed.value.details["node"] == "bad" and "cannot use 3" in failed.value.message
    graph["nodes"].append(node("handler", "builtins.dict", "method"))
    graph["links"].append(link("bad", "handler", ("WorkflowException", "error"), ("x", "x"),
                               on_error=True))  # fmt: skip
    handled = run(graph, "all")
    assert handled["handler"]["return_value"]["x"] == 3
    assert handled["handler"]["return_value"]["error"]["errorMessage"] == "cannot use 3"
    assert "after" not in handled


def test_default_error_node_catches_every_node() -> None:
    graph = {"nodes": [node("bad", "Fail", x=1), node("ok", "Double", x=1),
                       {**node("catch", "builtins.dict", "method"), "default_error_node": True,
                        "default_error_attributes": {"data_mapping": [
                            {"source_output": "WorkflowException", "target_input": "e"}]}}],
             "links": []}  # fmt: skip
    loaded = load(graph)
    assert {(k.source, k.target) for k in loaded.links} == {("bad", "catch"), ("ok", "catch")}
    assert all(k.on_error for k in loaded.links)
    assert run(graph, "all")["catch"]["return_value"]["e"]["errorMessage"] == "cannot use 1"


def test_subgraphs_flatten_through_aliases(tmp_path: Path) -> None:
    inner = {"graph": {"id": "inner", "input_nodes": [{"id": "in", "node": "first"}],
                       "output_nodes": [{"id": "out", "node": "second"}]},
             "nodes": [node("first", "Double"), node("second", "Add", b=1)],
             "links": [link("first", "second", ("y", "a"))]}
    (tmp_path / "inner.yaml").write_text(json.dumps(inner))
    outer = {"nodes": [node("start", "Add", a=2), {"id": "sub", "task_type": "graph",
                                                    "task_identifier": "inner.yaml"},
                       node("end", "Double")],
             "links": [{**link("start", "sub", ("sum", "x")), "sub_target": "in"},
                       {**link("sub", "end", ("sum", "x")), "sub_source": "out"}]}
    (tmp_path / "outer.json").write_text(json.dumps(outer))
    graph = load(str(tmp_path / "outer"))  # the extension may be left out
    assert list(graph.nodes) == ["start", ("sub", "first"), ("sub", "second"), "end"]
    assert execute_graph(graph).outputs("all", merge=False) == {
        "start": {"sum": 2}, "sub:first": {"y": 4}, "sub:second": {"sum": 5}, "end": {"y": 10}}
    assert load(graph.dump()).dump() == graph.dump(), "a dump loads back the same"


@pytest.mark.parametrize(("broken", "says"), [
    ({"nodes": [node("a", "Add")], "links": [link("a", "nowhere")]}, "'nowhere' is not a node"),
    ({"nodes": [node("a", "Add"), node("a", "Add")]}, "used twice"),
    ({"nodes": [{"id": "a", "task_type": "class"}]}, "task_identifier is missing"),
    ({"nodes": [{"id": "a", "task_type": "bogus", "task_identifier": "x"}]}, "task_type 'bogus'"),
    ({"nodes": [node("a", "Add"), node("b", "Add")],
      "links": [link("a", "b", ("sum", "a")), link("b", "a", ("sum", "a"))]},
     "the cycle .* has no conditional link"),
    ({"nodes": [node("a", "Add"), node("b", "Add"), node("c", "Add")],
      "links": [link("a", "b"), link("b", "c"), link("c", "a"),
                link("c", "b", conditions=[{"source_output": "sum", "value": 1}])]},
     "the cycle a -> b -> c -> a has no conditional link"),
    ({"nodes": [node("a", "Add"), node("b", "Add"), node("c", "Add")],
      "links": [link("a", "c", ("sum", "a")), link("b", "c", ("sum", "a"))]},
     "input 'a' comes from both 'a' and 'b'"),
    ({"nodes": [node("a", "Add")], "links": [link("a", "a", on_error=True,
                                                  conditions=[{"source_output": "sum",
                                                               "value": 1}])]},
     "on_error and conditions exclude each other"),
])  # fmt: skip
def test_invalid_graphs_are_refused_naming_what_is_wrong(broken: dict[str, Any], says: str
                                                         ) -> None:  # fmt: skip
    with pytest.raises(InvalidGraph, match=says):
        load(broken)


def test_tasks_and_required_inputs_are_checked() -> None:
    missing = load({"nodes": [node("a", "no_such_module.Task")]})
    with pytest.raises(InvalidGraph, match="node 'a': cannot import 'no_such_module'"):
        missing.check_tasks()
    unfed = load({"nodes": [node("a", "Add", b=1), node("d", "Double")],
                  "links": [link("a", "d", ("sum", "y"))]})
    with pytest.raises(InvalidGraph, match="node 'a': required input 'a' has no source"):
        unfed.check_inputs()
    unfed.with_parameters({"a": 1}).check_tasks()
    with pytest.raises(InvalidGraph, match="node 'd': required input 'x'"):
        unfed.with_parameters({"a": 1}).check_inputs()


def test_the_task_class_works_as_ewoks_tasks_do() -> None:
    class Scale(Task, input_names=["x"], optional_input_names=["factor"], output_names=["y"]):
        def run(self) -> None:
            assert self.missing_inputs.factor is (self.inputs.factor is MISSING_DATA)
            self.outputs.y = self.inputs.x * self.get_input_value("factor", 2)

    class Shifted(Scale, input_names=["shift"], output_names=["shifted"]):
        def run(self) -> None:
            super().run()
            self.outputs.shifted = self.outputs.y + self.inputs.shift

    assert Shifted.input_names == {"x", "shift"} and Shifted.output_names == {"y", "shifted"}
    task = Shifted({"x": 3, "shift": 1})
    task.run()
    assert task.get_output_values() == {"y": 6, "shifted": 7}
    with pytest.raises(TaskInputError, match="missing inputs for .*Shifted: shift"):
        Shifted({"x": 1})
    with pytest.raises(AttributeError, match="not a declared output"):
        task.outputs.other = 1
    with pytest.raises(AttributeError, match="read-only"):
        task.inputs.x = 2


def test_graphs_load_from_json_yaml_strings_and_package_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = {"graph": {"id": "g"}, "nodes": [node("a", "Add", a=1, b=2)]}
    package = tmp_path / "graphpack"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "chain.yml").write_text(json.dumps(raw))  # YAML is a superset of JSON
    monkeypatch.syspath_prepend(str(tmp_path))
    for source in ("graphpack.chain", json.dumps(raw), raw, str(package / "chain.yml")):
        assert execute_graph(load(source)).outputs() == {"sum": 3}, source
    with pytest.raises(InvalidGraph, match="no graph file or package resource 'graphpack.x'"):
        load("graphpack.x")
    (tmp_path / "bad.yaml").write_text("nodes: [unclosed")
    with pytest.raises(InvalidGraph, match="bad.yaml is neither JSON nor YAML"):
        load(str(tmp_path / "bad.yaml"))
