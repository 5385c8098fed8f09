"""Running a graph: one scheduler, three ways to run its nodes.

The scheduler decides what runs when; an engine only runs nodes:

- ``sequential``: one node after another, in this process (the default);
- ``parallel``: nodes whose inputs are ready run at the same time in a process pool;
- ``dask``: nodes run as tasks on a Dask cluster (``WORKFLOW_DASK_SCHEDULER``, or a
  local cluster), for graphs that outgrow one machine (extra ``[dask]``).

What runs when follows Ewoks' push semantics, so acyclic, conditional and cyclic graphs
all run. Start nodes run first with their inputs. When a node succeeds, each outgoing
link whose conditions hold (all of them, by ``==`` on the node's outputs; a condition
whose value is the node's ``conditions_else_value`` holds for any value the other links
do not name) delivers its data; when a node raises, only its ``on_error`` links do,
with the node's inputs and ``WorkflowException`` (``errorMessage``, ``traceBack``). A
node runs once every *required* incoming link has delivered, with its default inputs
overridden by the links' data; each later delivery over an optional link (conditional,
error, or downstream of those) runs it again, which is how loops go round. A node runs
at most ``max_runs`` times, so a loop whose condition never fails stops with an error.
A node that raises without an ``on_error`` link fails the graph, naming the node;
nothing new starts after that. With ``raise_on_error`` false (Ewoks' option, also a
graph attribute) the graph goes on past it instead: its independent branches run, what
lies downstream of it does not, and the execution lists it among its ``failures``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from workflow.errors import GraphFailed
from workflow.graph.cache import NodeCache
from workflow.graph.engines import ENGINES, Engine, Runs, Spec, engine
from workflow.graph.model import Graph, Link, NodeId, display
from workflow.graph.tasks import MISSING_DATA

__all__ = ["ENGINES", "Engine", "Execution", "NodeRun", "Scheduler", "Which", "execute_graph"]
#: Runs of one node after which a loop counts as endless.
MAX_RUNS = 1000


@dataclass
class NodeRun:
    """One run of one node: when, where, and what came of it."""

    node: NodeId
    run: int
    started: float
    stopped: float
    outcome: Literal["success", "failure"]
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    host: str | None = None
    pid: int | None = None
    #: Causal depth: 1 for a start, else 1 + the deepest run whose data it got.
    clock: int = 1
    #: Its outputs were those kept from an earlier run of the same task and inputs.
    reused: bool = False

    def entry(self, graph: Graph) -> dict[str, Any]:
        """The run as a JSON-ready history entry (outputs left out)."""
        entry = {"kind": "node", "node": display(self.node),
                 "label": graph.nodes[self.node].label, "run": self.run,
                 "started": self.started, "stopped": self.stopped, "outcome": self.outcome,
                 "error": self.error, "host": self.host, "pid": self.pid}  # fmt: skip
        if self.reused:
            entry["reused"] = True
        return entry


# -- the scheduler --------------------------------------------------------------------------


#: Which outputs to give: the end nodes' (``end``), every node's (``all``), or Ewoks'
#: selectors: ``{"id" | "label" | "task_identifier": ..., "name": ..., "new_name": ...}``
#: (``{"all": true}`` every node, ``{"all": false}`` the end nodes), one per entry.
Which = Literal["end", "all"] | list[dict[str, Any]]


@dataclass
class Execution:
    """Every node run of one execution, in the order they ended.

    Attributes:
        failed: The run that failed the graph: nothing new started after it.
        failures: Runs that failed with the graph going on past them (``raise_on_error``
            false): what lies downstream of each did not run, the rest did.
    """

    graph: Graph
    runs: list[NodeRun] = field(default_factory=list)
    failed: NodeRun | None = None
    failures: list[NodeRun] = field(default_factory=list)

    def outputs(self, which: Which = "end", merge: bool = True) -> dict[Any, Any]:
        """The outputs ``which`` selects: merged into one dict, or by node (ids as text,
        each node's last run).

        Runs count in causal order (``NodeRun.clock``, ties in the order the nodes are
        written), which does not depend on the engine: a later run wins a name. For an
        acyclic graph that is Ewoks' execution order; in a loop, the last round wins, as
        with Ewoks' ppf engine. A run that failed with the graph going on past it gives
        the outputs it set before it raised, as in Ewoks.

        Raises:
            GraphFailed: a node failed unhandled.
        """
        if self.failed is not None:
            raise failure(self.graph, self.failed)
        wanted = self._wanted(which)
        index = {n: i for i, n in enumerate(self.graph.nodes)}
        went_on = {id(r) for r in self.failures}
        runs = sorted((r for r in self.runs if r.node in wanted
                       and (r.outcome == "success" or id(r) in went_on)),
                      key=lambda r: (r.clock, index[r.node], r.run))  # fmt: skip
        if not merge:  # a node none of whose named outputs was set is left out
            last = {r.node: r for r in runs}
            picked = {n: _pick(last[n].outputs, wanted[n]) for n in self.graph.nodes if n in last}
            return {display(n): values for n, values in picked.items()
                    if values or any(name is None for name, _ in wanted[n])}  # fmt: skip
        merged: dict[str, Any] = {}
        for run in runs:
            merged.update(_pick(run.outputs, wanted[run.node]))
        return merged

    def _wanted(self, which: Which) -> dict[NodeId, list[tuple[Any, Any]]]:
        """Per node, the (output name or None for all, new name) pairs ``which`` asks."""
        selectors = [{"all": which == "all"}] if isinstance(which, str) else which
        wanted: dict[NodeId, list[tuple[Any, Any]]] = {}
        for selector in selectors:
            if any(key in selector for key in ("id", "label", "task_identifier")):
                nodes = self.graph.select(selector)
            else:
                nodes = list(self.graph.nodes) if selector.get("all") else self.graph.end_nodes()
            for node in nodes:
                wanted.setdefault(node, []).append((selector.get("name"),
                                                    selector.get("new_name")))  # fmt: skip
        return wanted

    def failed_nodes(self) -> list[dict[str, Any]]:
        """The runs the graph went on past: node, label, error type and message."""
        return [{"node": display(r.node), "label": self.graph.nodes[r.node].label,
                 "type": (r.error or {}).get("type"), "message": (r.error or {}).get("message")}
                for r in self.failures]  # fmt: skip


def _pick(outputs: dict[str, Any], wanted: list[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, new_name in wanted:
        if name is None:
            out.update(outputs)
        elif name in outputs:
            out[new_name or name] = outputs[name]
    return out


def failure(graph: Graph, run: NodeRun) -> GraphFailed:
    """The error of a graph whose node ``run`` failed, naming the node."""
    node = graph.nodes[run.node]
    error = run.error or {}
    return GraphFailed(f"node {display(run.node)!r} ({node.identifier}) failed: "
                       f"{error.get('type')}: {error.get('message')}", field="graph",
                       node=display(run.node), type=error.get("type"),
                       traceback=error.get("traceback"))  # fmt: skip


def execute_graph(graph: Graph, *, engine_name: str = "sequential", workers: int | None = None,
                  max_runs: int = MAX_RUNS, on_run: Callable[[NodeRun], None] | None = None,
                  scheduler: str | None = None,
                  on_start: Callable[[str], None] | None = None,
                  raise_on_error: bool | None = None,
                  cache: NodeCache | None = None) -> Execution:  # fmt: skip
    """Run ``graph`` (its inputs already set as default inputs) with an engine (for
    ``dask``, on the cluster at ``scheduler`` if given); ``on_run`` is told of each node
    run as it ends, ``on_start`` of each node (as ``display`` shows it) as a run starts.
    With ``raise_on_error`` false (None: the graph's attribute of that name, else true)
    a node that fails unhandled stops only what lies downstream of it. ``cache`` keeps
    node outputs, or reuses kept ones (``workflow.graph.cache``)."""
    if raise_on_error is None:
        raise_on_error = bool(graph.attrs.get("raise_on_error", True))
    runs = engine(engine_name, workers, scheduler)
    try:
        return Scheduler(graph, runs, max_runs, on_run, on_start, raise_on_error, cache).run()
    finally:
        runs.close()


class Scheduler:
    """What runs when (see the module docstring), for one execution."""

    def __init__(self, graph: Graph, runs: Runs, max_runs: int = MAX_RUNS,
                 on_run: Callable[[NodeRun], None] | None = None,
                 on_start: Callable[[str], None] | None = None,
                 raise_on_error: bool = True, cache: NodeCache | None = None):  # fmt: skip
        self.graph = graph
        self.raise_on_error = raise_on_error
        self.node_cache = cache
        self.runs = runs
        self.max_runs = max_runs
        self.on_run = on_run
        self.on_start = on_start
        self.required = {n: [k for k in graph.incoming(n) if graph.required(k)]
                         for n in graph.nodes}  # fmt: skip
        # Data that arrived, with the clock of the run that sent it.
        self.cache: dict[int, tuple[dict[Any, Any], int]] = {}
        self.buffered: dict[NodeId, deque[tuple[dict[Any, Any], int]]] = {
            n: deque() for n in graph.nodes}
        self.count: dict[NodeId, int] = dict.fromkeys(graph.nodes, 0)
        self.queue: deque[tuple[NodeId, tuple[dict[Any, Any], int] | None]] = deque()
        self.execution = Execution(graph)

    def run(self) -> Execution:
        """Run the graph. Runs start as soon as they are ready, many at once with the
        parallel engines; their ends are handled in the order the runs started (an
        end that comes early waits for the runs started before it). So every engine
        takes the same decisions, in the same order, as the sequential one, and gives
        the same outputs."""
        for node_id in self.graph.start_nodes():
            self.queue.append((node_id, None))
        running: dict[Any, tuple[NodeId, int, dict[Any, Any], int]] = {}
        started: deque[Any] = deque()
        ended: dict[Any, dict[str, Any]] = {}
        while self.queue or started:
            while self.queue and self.execution.failed is None:
                node_id, extra = self.queue.popleft()
                if self.count[node_id] >= self.max_runs:
                    self.execution.failed = self._endless(node_id)
                    break
                self.count[node_id] += 1
                inputs, clock = self._inputs(node_id, extra)
                if self.on_start is not None:
                    self.on_start(display(node_id))
                handle = self.runs.submit(self._spec(node_id), inputs)
                running[handle] = (node_id, self.count[node_id], inputs, clock)
                started.append(handle)
            if not started:
                break
            while started[0] not in ended:
                for handle in self.runs.wait([h for h in started if h not in ended]):
                    ended[handle] = self.runs.result(handle)
            while started and started[0] in ended:
                handle = started.popleft()
                node_id, number, inputs, clock = running.pop(handle)
                self._ended(self._record(node_id, number, ended.pop(handle), clock), inputs)
        return self.execution

    def _spec(self, node_id: NodeId) -> Spec:
        node = self.graph.nodes[node_id]
        return (node_id, node.task_type, node.identifier, node.label,
                node.attrs.get("task_generator"), node.attrs, self.node_cache)  # fmt: skip

    def _inputs(self, node_id: NodeId, extra: tuple[dict[Any, Any], int] | None
                ) -> tuple[dict[Any, Any], int]:  # fmt: skip
        """A run's inputs (defaults, then required links' data, then the data that
        triggered it), and its clock."""
        inputs = self.graph.nodes[node_id].default_inputs
        clock = 0
        for link in self.required[node_id]:
            payload, sent = self.cache.get(id(link), ({}, 0))
            inputs.update(payload)
            clock = max(clock, sent)
        if extra is not None:
            inputs.update(extra[0])
            clock = max(clock, extra[1])
        return inputs, clock + 1

    def _record(self, node_id: NodeId, number: int, raw: dict[str, Any], clock: int) -> NodeRun:
        run = NodeRun(node_id, number, raw["started"], raw["stopped"],
                      "failure" if raw["error"] else "success", raw["outputs"] or {},
                      raw["error"], raw.get("host"), raw.get("pid"), clock,
                      bool(raw.get("reused")))  # fmt: skip
        self.execution.runs.append(run)
        if self.on_run is not None:
            self.on_run(run)
        return run

    def _endless(self, node_id: NodeId) -> NodeRun:
        now = time.time()
        run = NodeRun(node_id, self.count[node_id] + 1, now, now, "failure", error={
            "type": "EndlessLoop", "message": f"node {display(node_id)!r} would run more than "
            f"{self.max_runs} times; a loop's condition never ends it"})  # fmt: skip
        self.execution.runs.append(run)
        if self.on_run is not None:
            self.on_run(run)
        return run

    def _ended(self, run: NodeRun, inputs: dict[Any, Any]) -> None:
        outgoing = self.graph.outgoing(run.node)
        if run.outcome == "success":
            available = run.outputs
            fired = [k for k in outgoing if not k.on_error and self._holds(k, run)]
        else:
            error = run.error or {}
            available = {**inputs, "WorkflowException": {
                "errorMessage": error.get("message"),
                "traceBack": (error.get("traceback") or "").splitlines(keepends=True)}}
            fired = [k for k in outgoing if k.on_error]
            if not fired and self.execution.failed is None:
                if self.raise_on_error:
                    self.execution.failed = run
                else:  # what lies downstream gets nothing and never runs; the rest goes on
                    self.execution.failures.append(run)
        for link in fired:
            self._deliver(link, (_payload(link, available), run.clock))

    def _holds(self, link: Link, run: NodeRun) -> bool:
        outputs = dict(run.outputs)
        if self.graph.nodes[run.node].task_type in ("ppfmethod", "ppfport"):
            outputs.update(outputs.get("_ppfdict") or {})
        node = self.graph.nodes[run.node]
        else_value = node.attrs.get("conditions_else_value")
        for condition in link.conditions:
            name, wanted = condition["source_output"], condition["value"]
            if name not in outputs:
                return False
            value = outputs[name]
            if wanted == else_value:
                named = [c["value"] for k in self.graph.outgoing(run.node) for c in k.conditions
                         if c["source_output"] == name and c["value"] != else_value]
                if not (value == else_value or value not in named):
                    return False
            elif value != wanted:
                return False
        return True

    def _deliver(self, link: Link, payload: tuple[dict[Any, Any], int]) -> None:
        target = link.target
        if link in self.required[target]:
            self.cache[id(link)] = payload
            if not self._complete(target):
                return
            waiting = self.buffered[target]
            if not waiting:
                self.queue.append((target, None))
            while waiting:
                self.queue.append((target, waiting.popleft()))
        elif self._complete(target):
            self.queue.append((target, payload))
        else:
            self.buffered[target].append(payload)

    def _complete(self, node_id: NodeId) -> bool:
        return all(id(link) in self.cache for link in self.required[node_id])


def _payload(link: Link, available: dict[Any, Any]) -> dict[Any, Any]:
    """What ``link`` hands its target from the source's ``available`` values."""
    if link.map_all_data:
        return dict(available)
    out = {}
    for mapping in link.data_mapping:
        source = mapping.get("source_output")
        out[mapping["target_input"]] = dict(available) if source is None \
            else available.get(source, MISSING_DATA)  # fmt: skip
    return out
