"""Graph works: each attempt runs the graph in a process of its own
(``python -m workflow.graph.work``), whose engine may start more processes or use Dask.

The work's timeout is enforced on the whole process group; node runs reported before a
kill or a crash still go into the attempt's history.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import orjson

from workflow.runner.outcome import failure, tail
from workflow.wire import Outcome
from workflow.work import ErrorInfo, NodeEntry


def run_graph(work: dict[str, Any], timeout: float, engine: str | None = None) -> Outcome:
    """Run the graph of ``work`` with its parameters as inputs, for at most ``timeout`` s."""
    started = time.time()
    request = {"graph": work["graph"], "parameters": work.get("parameters"), "engine": engine}
    process = subprocess.Popen([sys.executable, "-m", "workflow.graph.work"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    timed_out = False
    try:
        stdout, stderr = process.communicate(orjson.dumps(request), timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    nodes, ended = [], None
    for line in stdout.splitlines():
        try:
            said = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a task printed something: not ours
        if isinstance(said, dict) and "node" in said:
            nodes.append({k: v for k, v in said["node"].items() if k != "kind"})
        elif isinstance(said, dict) and "outcome" in said:
            ended = said["outcome"]
    if timed_out:
        outcome = failure("Timeout", f"the graph exceeded its timeout of {timeout:g} s")
        outcome.reason = "timeout"
    elif ended is None:
        outcome = failure("ProcessDied", f"the graph's process exited with code "
                          f"{process.returncode} without an outcome",
                          tail(stderr.decode(errors="replace")))  # fmt: skip
    else:
        outcome = Outcome.model_construct(status=ended["status"], results=ended.get("results"),
                                          error=ErrorInfo.model_validate(ended["error"])
                                          if ended.get("error") else None)  # fmt: skip
    outcome.nodes = [NodeEntry.model_validate(node) for node in nodes]
    outcome.started, outcome.stop = started, time.time()
    return outcome
