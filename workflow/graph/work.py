"""A graph work's attempt, as the runner's warm child runs it.

``attempt`` takes the work's ``graph`` and ``parameters``, runs the graph with the
parameters as graph inputs, says each node run as it ends (so node runs reach the
runner before a timeout kill or a crash), and returns the outcome: success with the
selected outputs as ``results``, or failure naming the node. The graph may say
``"engine"`` (``sequential``, ``parallel``, ``dask``), ``"workers"``, ``"outputs"``
(``end``, the default, merged; ``all``, per node; or a list of Ewoks' output selectors),
``"merge_outputs"`` and ``"raise_on_error"`` among its ``graph`` attributes. With
``raise_on_error`` false, nodes that failed do not fail the attempt: it succeeds with
the outputs there are, ``results["failed_nodes"]`` lists the failed nodes with their
errors, and the outcome's error names them (reason ``nodes-failed``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from workflow.errors import InvalidGraph, WorkflowError
from workflow.graph.cache import NodeCache
from workflow.graph.engine import NodeRun, Which, execute_graph
from workflow.graph.loading import load
from workflow.graph.model import Graph

_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def attempt(work: dict[str, Any], say: Callable[[bytes], None], engine: str | None = None,
            scheduler: str | None = None, starting: Callable[[str], None] | None = None,
            archive: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the graph of ``work``, calling ``say`` with each node run's history entry as
    JSON (and ``starting`` with each node's id as a run of it starts); the outcome as a
    dict. ``engine`` applies when the graph names none; ``scheduler`` is the Dask
    cluster to use for the ``dask`` engine. With an ``archive``, node outputs are kept
    there (unless the graph says ``"keep_outputs": false``), and a work retried from
    its point of failure reuses them (``workflow.graph.cache``)."""
    try:
        graph: Graph = load(work["graph"]).with_parameters(work.get("parameters"))
        graph.check_tasks()
        graph.check_inputs()
        which, merge = selection(graph.attrs.get("outputs"), graph.attrs.get("merge_outputs"))
    except WorkflowError as exc:
        return {"status": "failure", "error": {"type": type(exc).__name__, "message": exc.message}}
    name = str(graph.attrs.get("engine") or engine or "sequential")

    def said(run: NodeRun) -> None:
        entry = {k: v for k, v in run.entry(graph).items() if k != "kind"}
        say(orjson.dumps(entry, default=repr))

    cache, keep, reuse = None, graph.attrs.get("keep_outputs", True), from_failure(work)
    if archive and (keep or reuse):
        cache = NodeCache(archive, keep=keep is not False, reuse=reuse)
    execution = execute_graph(graph, engine_name=name, workers=graph.attrs.get("workers"),
                              on_run=said, scheduler=scheduler, on_start=starting,
                              cache=cache)  # fmt: skip
    try:
        outputs = execution.outputs(which, merge=merge)
    except WorkflowError as exc:
        return {"status": "failure", "error": {"type": type(exc).__name__, "message": exc.message,
                                               "traceback": exc.details.get("traceback")}}
    try:
        results = orjson.loads(orjson.dumps(outputs, option=_JSON))
    except orjson.JSONEncodeError as exc:
        return {"status": "failure", "error": {"type": "TypeError", "message":
                f"the graph's outputs cannot be stored as JSON: {exc}"}}  # fmt: skip
    failed = execution.failed_nodes()
    if not failed:
        return {"status": "success", "results": results}
    named = "; ".join(f"{f['node']}: {f['type']}: {f['message']}" for f in failed)
    return {"status": "success", "results": {**results, "failed_nodes": failed},
            "reason": "nodes-failed",
            "error": {"type": "NodesFailed", "message": f"{len(failed)} node(s) failed, "
                      f"the graph went on past them (raise_on_error false): {named}"}}  # fmt: skip


def from_failure(work: dict[str, Any]) -> bool:
    """Whether ``work`` is a retry from the point of failure of another (its history
    starts with that ``retry-of`` action)."""
    return any(entry.get("action") == "retry-of"
               and (entry.get("changes") or {}).get("from_failure")
               for entry in work.get("history") or [])  # fmt: skip


def selection(outputs: Any, merge: Any) -> tuple[Which, bool]:
    """Which outputs a graph's ``outputs`` and ``merge_outputs`` attributes select, and
    whether merged: the end nodes' merged by default, every node's by node for
    ``all``, Ewoks' selectors merged unless ``merge_outputs`` is false.

    Raises:
        InvalidGraph: ``outputs`` is none of these.
    """
    if outputs in (None, "end"):
        return "end", merge is not False
    if outputs == "all":
        return "all", bool(merge)
    if isinstance(outputs, list) and all(isinstance(item, dict) for item in outputs):
        return outputs, merge is not False
    raise InvalidGraph("graph.outputs is 'end', 'all' or a list of selectors such as "
                       '{"label": "fit", "name": "result", "new_name": "fit"}', field="outputs")
