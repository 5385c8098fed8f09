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
nothing new starts after that.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from workflow.errors import ConfigurationError, GraphFailed
from workflow.graph.model import Graph, Link, NodeId, display
from workflow.graph.tasks import MISSING_DATA, execute

Engine = Literal["sequential", "parallel", "dask"]
ENGINES: tuple[Engine, ...] = ("sequential", "parallel", "dask")
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

    def entry(self, graph: Graph) -> dict[str, Any]:
        """The run as a JSON-ready history entry (outputs left out)."""
        return {"kind": "node", "node": display(self.node), "label": graph.nodes[self.node].label,
                "run": self.run, "started": self.started, "stopped": self.stopped,
                "outcome": self.outcome, "error": self.error, "host": self.host,
                "pid": self.pid}  # fmt: skip


def run_node(spec: tuple[Any, str, Any, str, str | None], inputs: dict[Any, Any]) -> dict[str, Any]:
    """Run one node (in whatever process the engine chose); never raises."""
    node_id, task_type, identifier, label, generator = spec
    started = time.time()
    outputs: dict[str, Any] = {}
    error = None
    try:
        outputs = execute(task_type, identifier, inputs, node_id=node_id, label=label,
                          generator=generator)  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - a task may raise anything, SystemExit too
        error = {"type": type(exc).__name__, "message": str(exc),
                 "traceback": "".join(traceback.format_exception(exc))[-4000:]}  # fmt: skip
    return {"outputs": outputs, "error": error, "started": started, "stopped": time.time(),
            "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip


# -- engines --------------------------------------------------------------------------------


class Runs(Protocol):
    """How an engine runs nodes: submit, then wait for some to be done."""

    def submit(self, spec: tuple[Any, ...], inputs: dict[Any, Any]) -> Any: ...

    def wait(self, pending: list[Any]) -> list[Any]: ...

    def result(self, handle: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Sequential:
    """Each node runs in this process when it is submitted."""

    def submit(self, spec: tuple[Any, ...], inputs: dict[Any, Any]) -> Future[dict[str, Any]]:
        done: Future[dict[str, Any]] = Future()
        done.set_result(run_node(spec, inputs))  # type: ignore[arg-type]
        return done

    def wait(self, pending: list[Any]) -> list[Any]:
        return pending

    def result(self, handle: Any) -> dict[str, Any]:
        return handle.result()  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


class Parallel(Sequential):
    """Nodes run in a pool of ``workers`` processes."""

    def __init__(self, workers: int | None = None):
        self.pool: Executor = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2)

    def submit(self, spec: tuple[Any, ...], inputs: dict[Any, Any]) -> Future[dict[str, Any]]:
        return self.pool.submit(run_node, spec, inputs)

    def wait(self, pending: list[Any]) -> list[Any]:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return list(done)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Dask(Parallel):
    """Nodes run as tasks of a Dask cluster: the scheduler at ``address``, else a local
    cluster of ``workers`` single-threaded processes started for this graph.

    A process that runs many graphs on one cluster (a runner's warm child) keeps its
    client to the cluster between them: ``keep`` leaves it open at ``close``.
    """

    _kept: dict[str, Any] = {}  # address -> the client this process keeps to it

    def __init__(self, address: str | None = None, workers: int | None = None,
                 keep: bool = False):  # fmt: skip
        try:
            import distributed
        except ImportError as exc:
            raise ConfigurationError("the dask engine needs the [dask] extra: "
                                     "pip install 'workflow[dask]'") from exc  # fmt: skip
        self._cluster = None
        self._keep = keep  # only with an address: the cluster outlives this graph
        if address is None:
            self._cluster = local_cluster(workers)
            address = self._cluster.scheduler_address
        client = Dask._kept.get(address) if self._keep else None
        if client is None or client.status != "running":
            client = distributed.Client(address, set_as_default=False)
            if self._keep:
                Dask._kept[address] = client
        self.client = client
        self.pool = self.client.get_executor(pure=False)  # concurrent.futures-shaped

    def close(self) -> None:
        if self._keep:
            self.pool.shutdown(wait=False)
            return
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def local_cluster(workers: int | None = None) -> Any:
    """A Dask cluster on this host: ``workers`` single-threaded processes."""
    import distributed

    return distributed.LocalCluster(n_workers=workers or os.cpu_count() or 2, threads_per_worker=1,
                                    processes=True, dashboard_address=None,
                                    silence_logs=40)  # fmt: skip


def engine(name: str, workers: int | None = None, scheduler: str | None = None) -> Runs:
    """The engine called ``name``; for ``dask``, on the cluster at ``scheduler`` (kept
    open for the next graph), else ``WORKFLOW_DASK_SCHEDULER``'s, else a new local one."""
    if name == "sequential":
        return Sequential()
    if name == "parallel":
        return Parallel(workers)
    if name == "dask":
        if scheduler:
            return Dask(scheduler, workers, keep=True)
        return Dask(os.environ.get("WORKFLOW_DASK_SCHEDULER") or None, workers)
    raise ConfigurationError(f"unknown engine {name!r}; use {', '.join(ENGINES)}",
                             field="engine")  # fmt: skip


# -- the scheduler --------------------------------------------------------------------------


@dataclass
class Execution:
    """Every node run of one execution, in the order they ended."""

    graph: Graph
    runs: list[NodeRun] = field(default_factory=list)
    failed: NodeRun | None = None

    def outputs(self, which: Literal["end", "all"] = "end", merge: bool = True
                ) -> dict[Any, Any]:  # fmt: skip
        """The outputs of the end nodes (or of all nodes): merged into one dict, or by
        node (ids as text, each node's last run).

        Successful runs count in causal order (``NodeRun.clock``, ties in the order the
        nodes are written), which does not depend on the engine: a later run wins a
        name. For an acyclic graph that is Ewoks' execution order; in a loop, the last
        round wins, as with Ewoks' ppf engine.

        Raises:
            GraphFailed: a node failed unhandled.
        """
        if self.failed is not None:
            raise failure(self.graph, self.failed)
        chosen = set(self.graph.end_nodes() if which == "end" else self.graph.nodes)
        index = {n: i for i, n in enumerate(self.graph.nodes)}
        runs = sorted((r for r in self.runs if r.outcome == "success" and r.node in chosen),
                      key=lambda r: (r.clock, index[r.node], r.run))  # fmt: skip
        if not merge:
            last = {r.node: r.outputs for r in runs}
            return {display(n): dict(last[n]) for n in self.graph.nodes if n in last}
        merged: dict[str, Any] = {}
        for run in runs:
            merged.update(run.outputs)
        return merged


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
                  on_start: Callable[[str], None] | None = None) -> Execution:  # fmt: skip
    """Run ``graph`` (its inputs already set as default inputs) with an engine (for
    ``dask``, on the cluster at ``scheduler`` if given); ``on_run`` is told of each node
    run as it ends, ``on_start`` of each node (as ``display`` shows it) as a run starts."""
    runs = engine(engine_name, workers, scheduler)
    try:
        return Scheduler(graph, runs, max_runs, on_run, on_start).run()
    finally:
        runs.close()


class Scheduler:
    """What runs when (see the module docstring), for one execution."""

    def __init__(self, graph: Graph, runs: Runs, max_runs: int = MAX_RUNS,
                 on_run: Callable[[NodeRun], None] | None = None,
                 on_start: Callable[[str], None] | None = None):  # fmt: skip
        self.graph = graph
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

    def _spec(self, node_id: NodeId) -> tuple[Any, str, Any, str, str | None]:
        node = self.graph.nodes[node_id]
        return (node_id, node.task_type, node.identifier, node.label,
                node.attrs.get("task_generator"))  # fmt: skip

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
                      raw["error"], raw.get("host"), raw.get("pid"), clock)  # fmt: skip
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
                self.execution.failed = run
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
