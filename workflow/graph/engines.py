"""The three ways to run a graph's nodes (``workflow.graph.engine`` decides what runs
when): ``sequential`` in this process, ``parallel`` in a process pool, ``dask`` on a Dask
cluster. Each runs one node with ``run_node``, which never raises."""

from __future__ import annotations

import os
import socket
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Any, Literal, Protocol

from workflow.errors import ConfigurationError
from workflow.graph.cache import NodeCache
from workflow.graph.tasks import execute

Engine = Literal["sequential", "parallel", "dask"]
ENGINES: tuple[Engine, ...] = ("sequential", "parallel", "dask")


#: What ``run_node`` needs of a node: id, task type, task identifier, label, task
#: generator, every attribute of the node (an ewokscore task gets them), and where
#: node outputs are kept (``workflow.graph.cache``), if anywhere.
Spec = tuple[Any, str, Any, str, "str | None", dict[str, Any], "NodeCache | None"]


def run_node(spec: Spec, inputs: dict[Any, Any]) -> dict[str, Any]:
    """Run one node (in whatever process the engine chose); never raises. A task that
    raised keeps the outputs it set before (as in Ewoks). With reuse asked for, a run
    whose task and inputs ran before gives the outputs kept then (``reused``)."""
    node_id, task_type, identifier, label, generator, attrs, cache = spec
    key = cache.key(spec, inputs) if cache is not None else None
    if key is not None and cache is not None and cache.reuse:
        kept = cache.load(key)
        if kept is not None:
            now = time.time()
            return {"outputs": kept, "error": None, "started": now, "stopped": now,
                    "host": socket.gethostname(), "pid": os.getpid(), "reused": True}  # fmt: skip
    started = time.time()
    partial: dict[str, Any] = {}
    error = None
    try:
        outputs = execute(task_type, identifier, inputs, node_id=node_id, label=label,
                          generator=generator, node_attrs=attrs, partial=partial)  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - a task may raise anything, SystemExit too
        outputs = partial
        error = {"type": type(exc).__name__, "message": str(exc),
                 "traceback": "".join(traceback.format_exception(exc))[-4000:]}  # fmt: skip
    if error is None and key is not None and cache is not None and cache.keep:
        cache.store(key, outputs)
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
