"""A graph work's attempt, as the runner's warm child runs it.

``attempt`` takes the work's ``graph`` and ``parameters``, runs the graph with the
parameters as graph inputs, says each node run as it ends (so node runs reach the
runner before a timeout kill or a crash), and returns the outcome: success with the
selected outputs as ``results``, or failure naming the node. The graph may say
``"engine"`` (``sequential``, ``parallel``, ``dask``), ``"workers"`` and ``"outputs"``
(``end``, the default, merged; or ``all``, per node) among its ``graph`` attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from workflow.errors import WorkflowError
from workflow.graph.engine import NodeRun, execute_graph
from workflow.graph.loading import load
from workflow.graph.model import Graph

_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def attempt(work: dict[str, Any], say: Callable[[bytes], None], engine: str | None = None,
            scheduler: str | None = None, starting: Callable[[str], None] | None = None
            ) -> dict[str, Any]:  # fmt: skip
    """Run the graph of ``work``, calling ``say`` with each node run's history entry as
    JSON (and ``starting`` with each node's id as a run of it starts); the outcome as a
    dict. ``engine`` applies when the graph names none; ``scheduler`` is the Dask
    cluster to use for the ``dask`` engine."""
    try:
        graph: Graph = load(work["graph"]).with_parameters(work.get("parameters"))
        graph.check_tasks()
        graph.check_inputs()
    except WorkflowError as exc:
        return {"status": "failure", "error": {"type": type(exc).__name__, "message": exc.message}}
    name = str(graph.attrs.get("engine") or engine or "sequential")
    which = "all" if graph.attrs.get("outputs") == "all" else "end"

    def said(run: NodeRun) -> None:
        entry = {k: v for k, v in run.entry(graph).items() if k != "kind"}
        say(orjson.dumps(entry, default=repr))

    execution = execute_graph(graph, engine_name=name, workers=graph.attrs.get("workers"),
                              on_run=said, scheduler=scheduler, on_start=starting)  # fmt: skip
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
