"""Run one of Ewoks' example graphs through Ewoks and through workflow.graph; print JSON.

Run inside ``.venv-ewoks`` (ewokscore, ewoksppf, ewoks, distributed) with this
repository on ``PYTHONPATH``: ``python ewoks_compare.py NAME``. Ewoks runs the graph with
the engine that supports it (``core`` for acyclic graphs without conditions, else
``ppf``); ours runs it with each of our engines. The tasks are Ewoks' own example
tasks (ewokscore ``Task`` subclasses), run unchanged.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
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


def _node(id: str, task: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id, "task_type": "class", "task_identifier": f"ewoks_tasks.{task}",
            "default_inputs": [{"name": k, "value": v} for k, v in inputs.items()]}


#: ewokscore tasks that say their node's label and id, one that sets an output and
#: then raises (with a node downstream of it), one with an input model, run with
#: ``raise_on_error`` false.
SEMANTICS = {
    "graph": {"id": "semantics"},
    "nodes": [{**_node("a", "Who", x=1), "label": "first who"}, _node("b", "Partly", x=2),
              _node("c", "Who"), _node("d", "Scale", x="3")],
    "links": [{"source": "b", "target": "c",
               "data_mapping": [{"source_output": "early", "target_input": "x"}]}],
}  # fmt: skip
SELECTED = [{"label": "first who", "name": "label", "new_name": "who"}, {"id": "d"}]
BY_NODE = [{"id": "a"}, {"id": "b"}, {"id": "d"}, {"task_identifier": "Scale"}]


def semantics() -> None:
    """Ewoks' outputs of SEMANTICS and ours (each engine), as JSON."""
    def ewoks_run(**options: Any) -> Any:
        return _plain(ewoks.execute_graph(SEMANTICS, engine="core", raise_on_error=False,
                                          **options))  # fmt: skip

    theirs = {"selected": ewoks_run(outputs=SELECTED),
              "by_node": ewoks_run(outputs=BY_NODE, merge_outputs=False)}  # fmt: skip
    ours = {}
    for engine in ENGINES:
        execution = execute_graph(load(SEMANTICS), engine_name=engine, workers=2,
                                  raise_on_error=False)  # fmt: skip
        ours[engine] = {"selected": _plain(execution.outputs(SELECTED)),
                        "by_node": _plain(execution.outputs(BY_NODE, merge=False)),
                        "ran": sorted({display(r.node) for r in execution.runs}),
                        "failed": execution.failed_nodes()}  # fmt: skip
    print("@@" + json.dumps({"ewoks": theirs, "ours": ours}, default=repr), flush=True)
#: ewoksppf now and then never ends a run (its issue #16, about one run in forty of
#: self_trigger here): a run not ended after this long is left behind and another made.
RUN_SECONDS = 30
RUNS = 4


def _within(seconds: float, run: Callable[[], Any]) -> tuple[bool, Any]:
    """Whether ``run()`` returned within ``seconds``, and its value."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(run()), daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(box), box[0] if box else None


def _plain(value: Any) -> Any:
    if missing_data.is_missing_data(value):
        return None
    if isinstance(value, dict):
        return {(display(k) if isinstance(k, tuple) else str(k)): _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _engine(graph: Any) -> str:
    loaded = load_graph(graph)
    return "core" if loaded.is_cyclic is False and not loaded.has_conditional_links else "ppf"


def ewoks_end(graph: Any, engine: str) -> Any:
    """Ewoks' end result, from the first of ``RUNS`` runs that ends."""
    for _ in range(RUNS):
        ended, end = _within(RUN_SECONDS, lambda: ewoks.execute_graph(graph, engine=engine))
        if ended:
            return _plain(end)
    raise SystemExit(f"no Ewoks run ended within {RUN_SECONDS} s, {RUNS} times")


def main(name: str, ewoks_only: bool = False) -> None:
    graph = SUBGRAPH if name == "subgraph" else get_graph(name)[0]
    engine = _engine(graph)
    theirs: dict[str, Any] = {"engine": engine, "end": ewoks_end(graph, engine)}
    if ewoks_only:
        print("@@" + json.dumps({"name": name, "ewoks": theirs}), flush=True)
        return
    if engine == "core":
        every = ewoks.execute_graph(graph, engine=engine, outputs=[{"all": True}],
                                    merge_outputs=False)  # fmt: skip
        theirs["all"] = {k: (v or {}) for k, v in _plain(every).items()}
    ours = {}
    for ours_engine in ENGINES:
        execution = execute_graph(load(graph), engine_name=ours_engine, workers=2)
        ours[ours_engine] = {"end": _plain(execution.outputs()),
                             "all": _plain(execution.outputs("all", merge=False))}
    print("@@" + json.dumps({"name": name, "ewoks": theirs, "ours": ours}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--names"]:
        print(json.dumps(NAMES))
    elif sys.argv[1:] == ["--semantics"]:
        # The pool's and Dask's processes import the tasks too.
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        os.environ["PYTHONPATH"] = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
        semantics()
        sys.stdout.flush()
        os._exit(0)
    else:
        main(sys.argv[-1], ewoks_only=sys.argv[1] == "--ewoks-only")
        # Not waiting for an Ewoks run left behind, nor for its pool's processes.
        sys.stdout.flush()
        os._exit(0)
