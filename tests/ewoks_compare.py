"""Run one of Ewoks' example graphs through Ewoks and through workflow.graph; print JSON.

Run inside ``.venv-ewoks`` (ewokscore, ewoksppf, ewoks, distributed) with this
repository on ``PYTHONPATH``: ``python ewoks_compare.py NAME``. Ewoks runs the graph with
the engine that supports it (``core`` for acyclic graphs without conditions, else
``ppf``); ours runs it with each of our engines. The tasks are Ewoks' own example
tasks (ewokscore ``Task`` subclasses), run unchanged.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import ewoks
from ewokscore import missing_data
from ewokscore.graph import load_graph
from ewokscore.tests.examples.graphs import get_graph, graph_names

from workflow.graph import ENGINES, execute_graph, load
from workflow.graph.model import display

#: Ewoks' sub-graph example (ewokscore tests/test_sub_graph.py): a graph node holding a
#: graph node holding a method node, reached through input aliases at two levels.
_MYFUNC = "ewokscore.tests.test_sub_graph.myfunc"
SUBGRAPH = {
    "graph": {"id": "graph", "schema_version": "1.1"},
    "nodes": [
        {"id": "node1", "task_type": "method", "task_identifier": _MYFUNC,
         "default_inputs": [{"name": "name", "value": "node1"}, {"name": "value", "value": 0}]},
        {"id": "node2", "task_type": "graph", "task_identifier": {
            "graph": {"id": "subgraph", "schema_version": "1.1",
                      "input_nodes": [{"id": "in", "node": "subnode1", "sub_node": "in"}]},
            "nodes": [{"id": "subnode1", "task_type": "graph", "task_identifier": {
                "graph": {"id": "subsubgraph", "schema_version": "1.1",
                          "input_nodes": [{"id": "in", "node": "subsubnode1"}]},
                "nodes": [{"id": "subsubnode1", "task_type": "method", "task_identifier": _MYFUNC,
                           "default_inputs": [{"name": "name", "value": "subsubnode1"},
                                              {"name": "value", "value": 0}]}]}}]}},
    ],
    "links": [{"source": "node1", "target": "node2", "sub_target": "in",
               "data_mapping": [{"target_input": "value", "source_output": "return_value"}]}],
}  # fmt: skip
NAMES = [*graph_names(), "subgraph"]
PPF_RUNS = 5


def _plain(value: Any) -> Any:
    if missing_data.is_missing_data(value):
        return None
    if isinstance(value, dict):
        return {(display(k) if isinstance(k, tuple) else str(k)): _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def main(name: str) -> None:
    graph = SUBGRAPH if name == "subgraph" else get_graph(name)[0]
    loaded = load_graph(graph)
    engine = "core" if loaded.is_cyclic is False and not loaded.has_conditional_links else "ppf"
    # ewoksppf runs a node once per arriving input on threads of its own, so where a
    # node runs several times (self_trigger's task3) which run ends last is a race:
    # collect every end Ewoks gives over a few runs; ours must be one of them.
    ends: list[Any] = []
    for _ in range(PPF_RUNS if engine == "ppf" else 1):
        end = _plain(ewoks.execute_graph(graph, engine=engine))
        if end not in ends:
            ends.append(end)
    theirs: dict[str, Any] = {"engine": engine, "ends": ends}
    if engine == "core":
        every = ewoks.execute_graph(graph, engine=engine, outputs=[{"all": True}],
                                    merge_outputs=False)  # fmt: skip
        theirs["all"] = {k: (v or {}) for k, v in _plain(every).items()}
    ours = {}
    for ours_engine in ENGINES:
        execution = execute_graph(load(graph), engine_name=ours_engine, workers=2)
        ours[ours_engine] = {"end": _plain(execution.outputs()),
                             "all": _plain(execution.outputs("all", merge=False))}
    print("@@" + json.dumps({"name": name, "ewoks": theirs, "ours": ours}))  # tasks print too


if __name__ == "__main__":
    if sys.argv[1:] == ["--names"]:
        print(json.dumps(NAMES))
    else:
        main(sys.argv[1])
