"""A graph work's attempt, run as ``python -m workflow.graph.work`` by the runner.

It reads ``{"graph", "parameters", "engine"}`` as JSON on stdin, runs the graph with the
parameters as graph inputs, and writes JSON lines on stdout: ``{"node": ...}`` as each
node run ends (so they survive a timeout kill), then ``{"outcome": ...}``: success with
the selected outputs as ``results``, or failure naming the node. The graph may say
``"engine"`` (``sequential``, ``parallel``, ``dask``), ``"workers"`` and ``"outputs"``
(``end``, the default, merged; or ``all``, per node) among its ``graph`` attributes.
A process of its own lets the parallel and Dask engines start their workers.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import orjson

from workflow.errors import WorkflowError
from workflow.graph.engine import NodeRun, execute_graph
from workflow.graph.loading import load
from workflow.graph.model import Graph

_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _say(line: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(line, default=repr) + b"\n")
    sys.stdout.flush()


def attempt(request: dict[str, Any]) -> dict[str, Any]:
    """Run the graph of ``request``; the outcome (node runs are said as they end)."""
    try:
        graph: Graph = load(request["graph"]).with_parameters(request.get("parameters"))
        graph.check_tasks()
        graph.check_inputs()
    except WorkflowError as exc:
        return {"status": "failure", "error": {"type": type(exc).__name__, "message": exc.message}}
    engine = str(graph.attrs.get("engine") or request.get("engine") or "sequential")
    which = "all" if graph.attrs.get("outputs") == "all" else "end"

    def said(run: NodeRun) -> None:
        _say({"node": run.entry(graph)})

    execution = execute_graph(graph, engine_name=engine, workers=graph.attrs.get("workers"),
                              on_run=said)  # fmt: skip
    try:
        outputs = execution.outputs(which, merge=which == "end")  # type: ignore[arg-type]
    except WorkflowError as exc:
        return {"status": "failure", "error": {"type": type(exc).__name__, "message": exc.message,
                                               "traceback": exc.details.get("traceback")}}
    try:
        results = orjson.loads(orjson.dumps(outputs, option=_JSON))
    except orjson.JSONEncodeError as exc:
        return {"status": "failure", "error": {"type": "TypeError", "message":
                f"the graph's outputs cannot be stored as JSON: {exc}"}}  # fmt: skip
    return {"status": "success", "results": results}


def main() -> None:
    try:
        outcome = attempt(orjson.loads(sys.stdin.buffer.read()))
    except BaseException as exc:  # noqa: BLE001 - the runner needs an outcome line
        outcome = {"status": "failure", "error": {
            "type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}}
    _say({"outcome": outcome})


if __name__ == "__main__":
    main()
