"""Graph works in a runner: they run in its warm children like functions
(``runner/child.py``); this module says how each is to run, and keeps the runner's one
Dask cluster, started the first time a graph needs it.

A graph names its engine among its attributes (``"engine"``), else the runner's
``--graph-engine`` applies, else ``sequential``. Graphs on the ``dask`` engine share
the cluster at ``WORKFLOW_DASK_SCHEDULER``, else one local cluster that the runner
starts once and stops when it stops. A graph attempt killed for its timeout takes its
own processes with it; tasks it had on the shared cluster are cancelled, and one
already running there finishes on its worker, its result dropped.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from workflow.errors import ConfigurationError, WorkflowError


class Graphs:
    """How the graph works of one runner run: the engine, and the Dask cluster."""

    def __init__(self, engine: str | None = None, archive: Path | None = None):
        self.engine = engine
        self.archive = str(archive) if archive is not None else None
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._address = os.environ.get("WORKFLOW_DASK_SCHEDULER") or None

    def how(self, work: dict[str, Any]) -> dict[str, Any]:
        """What the child needs to run the graph of ``work``: ``{"engine", "scheduler",
        "archive"}`` (where node outputs are kept, ``workflow.graph.cache``)."""
        how: dict[str, Any] = {"engine": self.engine, "scheduler": self._address,
                               "archive": self.archive}  # fmt: skip
        # Only until a cluster is known is the graph read here, to see if it needs one.
        if self._address is None and (named(work["graph"]) or self.engine) == "dask":
            with contextlib.suppress(WorkflowError):  # no Dask here: the child says so
                how["scheduler"] = self.scheduler()
        return how

    def scheduler(self) -> str:
        """The address of the runner's Dask cluster, started on first use.

        Raises:
            ConfigurationError: Dask is not installed.
        """
        with self._lock:
            if self._address is None:
                from workflow.graph.engines import local_cluster

                try:
                    self._cluster = local_cluster()
                except ImportError as exc:
                    raise ConfigurationError("the dask engine needs the [dask] extra") from exc
                self._address = self._cluster.scheduler_address
            return self._address

    def close(self) -> None:
        """Stop the cluster this runner started, if it did."""
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):  # the runner is stopping: nothing to save
                cluster.close(timeout=10)


def named(graph: Any) -> str | None:
    """The engine a graph (inline, or the file it names) says it runs on, if it says."""
    from workflow.graph.loading import read

    try:
        raw = graph if isinstance(graph, dict) else read(graph)[0]
    except WorkflowError:
        return None  # the child reports what is wrong with it
    attrs = raw.get("graph")
    engine = attrs.get("engine") if isinstance(attrs, dict) else None
    return engine if isinstance(engine, str) else None
