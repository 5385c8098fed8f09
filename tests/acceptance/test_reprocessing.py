"""Reprocessing a graph work from its point of failure, with real processes: the nodes
that succeeded are not run again (their outputs are kept in the archive), only the
failed node and what lies downstream of it are, and the results equal a clean run's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_tasks import link, node
from harness import Server, deposit, until

pytestmark = pytest.mark.slow


def _chain(folder: Path) -> dict[str, Any]:
    """first → second (fails while ``folder/broken`` exists) → third, each counting its
    runs in ``folder/NAME.runs``."""
    def counted(id: str, **inputs: Any) -> dict[str, Any]:
        return node(id, "usertasks.counted", "method", path=str(folder / f"{id}.runs"),
                    **inputs)  # fmt: skip

    return {"graph": {"id": "chain"},
            "nodes": [counted("first", x=1),
                      counted("second", fail_while=str(folder / "broken")),
                      counted("third")],
            "links": [link("first", "second", ("return_value", "x")),
                      link("second", "third", ("return_value", "x"))]}  # fmt: skip


def _runs(folder: Path) -> dict[str, int]:
    return {name: len((folder / f"{name}.runs").read_text().splitlines())
            if (folder / f"{name}.runs").exists() else 0
            for name in ("first", "second", "third")}  # fmt: skip


def _finished(server: Server, id: str) -> dict[str, Any]:
    return until(lambda: (w := httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json())
                 ["status"] in ("success", "failure") and w, 60)  # type: ignore[no-any-return]


def test_a_retry_from_failure_runs_only_the_failed_node_and_what_follows(
        server: Server, runner: Any, tmp_path: Path) -> None:  # fmt: skip
    archive, folder, clean = tmp_path / "archive", tmp_path / "counts", tmp_path / "clean"
    folder.mkdir()
    clean.mkdir()
    runner("chains", "--archive", str(archive))
    (folder / "broken").touch()
    failed = _finished(server, deposit(server, pipeline="chains", graph=_chain(folder),
                                        retries=0))  # fmt: skip
    assert failed["status"] == "failure"
    assert "node 'second'" in failed["history"][-1]["error"]["message"]
    assert _runs(folder) == {"first": 1, "second": 1, "third": 0}
    assert list((archive / "nodes").glob("*/*.pickle")), "the first node's outputs were kept"

    (folder / "broken").unlink()  # the fix
    env = {**os.environ, "WORKFLOW_URL": server.url}
    retried = subprocess.run([sys.executable, "-m", "workflow", "results", "retry", "--pipeline",
                              "chains", "--status", "failure", "--from-failure", "--yes"],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    new_id = until(lambda: next((e["changes"]["as"] for e in httpx.get(
        f"{server.url}/buckets/work/{failed['id']}", timeout=10).json()["history"]
        if e.get("action") == "retried-as"), None))  # fmt: skip
    done = _finished(server, new_id)
    assert done["status"] == "success", done["history"][-1].get("error")
    assert _runs(folder) == {"first": 1, "second": 2, "third": 1}, "first was reused"
    (entry,) = [e for e in done["history"] if e.get("kind") == "attempt"]
    assert {n["node"]: bool(n.get("reused")) for n in entry["nodes"]} == {
        "first": True, "second": False, "third": False}
    assert done["history"][0]["changes"] == {"of": failed["id"], "from_failure": True}

    fresh = _finished(server, deposit(server, pipeline="chains", graph=_chain(clean)))
    assert fresh["status"] == "success" and fresh["results"] == done["results"]
    assert _runs(clean) == {"first": 1, "second": 1, "third": 1}


def test_only_a_graph_work_is_retried_from_failure(server: Server, runner: Any) -> None:
    runner("plain", "usertasks.boom", "--lives", "1")
    id = deposit(server, pipeline="plain", parameters={"x": 1}, retries=0)
    _finished(server, id)
    refused = httpx.post(f"{server.url}/buckets/work/{id}/retry", json={"from_failure": True},
                         timeout=10)  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["field"] == "from_failure" and "no graph" in refused.json()["message"]
