"""Provenance per attempt, with real ``workflow serve`` and ``workflow run`` processes:
each attempt's history entry says the Python version, host, container image, runner
version, where its code came from (a distribution, a git checkout, neither) and, for a
graph, the graph's hash; a results search finds a work by them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from harness import Server, until

import workflow

pytestmark = pytest.mark.slow

IMAGE = "registry.example/beamline-processing:2.4"
#: A graph of two functions: one from an installed distribution (PyYAML), one from the
#: tests' ``usertasks`` module.
GRAPH = {"graph": {"id": "provenance"},
         "nodes": [{"id": "parse", "task_type": "method", "task_identifier": "yaml.safe_load",
                    "default_inputs": [{"name": "stream", "value": "{a: 1}"}]},
                   {"id": "double", "task_type": "method", "task_identifier": "usertasks.double",
                    "default_inputs": [{"name": "x", "value": 3}]}],
         "links": [{"source": "parse", "target": "double"}]}  # fmt: skip


def _deposit(server: Server, *works: dict[str, Any]) -> list[str]:
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=[{"retries": 0, **w} for w in works], timeout=10)  # fmt: skip
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def _finished(server: Server, id: str) -> dict[str, Any]:
    """The work once it finished, with its one attempt's history entry checked."""
    work = until(lambda: (w := httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json())
                 ["status"] in ("success", "failure") and w, 60)  # fmt: skip
    assert work["status"] == "success", work["history"]
    return work  # type: ignore[no-any-return]


def _provenance(work: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [e for e in work["history"] if e.get("kind", "attempt") == "attempt"]
    return entry["provenance"]  # type: ignore[no-any-return]


def _found(server: Server, text: str) -> set[str]:
    reply = httpx.get(f"{server.url}/results/works", params={"text": text}, timeout=10)
    reply.raise_for_status()
    return {item["id"] for item in reply.json()["items"]}


def _here(**more: Any) -> dict[str, Any]:
    return {"python": platform.python_version(), "host": socket.gethostname(),
            "runner": workflow.__version__, **more}  # fmt: skip


def test_functions_graphs_and_commands_record_where_they_ran_and_are_found_by_it(
        server: Server, runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("WORKFLOW_IMAGE", IMAGE)
    plain, installed, graph, command = _deposit(
        server,
        {"pipeline": "provenance", "function": "usertasks.double", "parameters": {"x": 2}},
        {"pipeline": "provenance", "function": "yaml.safe_load",
         "parameters": {"stream": "{fruit: apple}"}},
        {"pipeline": "provenance", "graph": GRAPH},
        {"pipeline": "provenance", "command": ["true"]},
    )  # fmt: skip
    runner("provenance")
    pyyaml = {"distribution": "PyYAML", "version": importlib.metadata.version("PyYAML")}
    done = _finished(server, installed)
    assert done["results"] == {"fruit": "apple"}
    assert _provenance(done) == _here(image=IMAGE, code={"yaml": pyyaml})
    # Neither installed nor in a git checkout (pytest's temporary folder).
    assert _provenance(_finished(server, plain)) == _here(image=IMAGE,
                                                          code={"usertasks": "unknown"})
    digest = hashlib.sha256(orjson.dumps(GRAPH, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert _provenance(_finished(server, graph)) == _here(
        image=IMAGE, graph=digest, code={"yaml": pyyaml, "usertasks": "unknown"})
    assert _provenance(_finished(server, command)) == _here(image=IMAGE)
    # Searchable by the distribution's version, its name, the graph's hash, the image.
    assert _found(server, pyyaml["version"]) == {installed, graph}
    assert _found(server, "PyYAML") == {installed, graph}
    assert _found(server, digest[:12]) == {graph}
    assert _found(server, "beamline-processing") == {plain, installed, graph, command}


def test_a_module_of_a_git_checkout_records_its_describe(
        server: Server, runner: Any, tasks: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:  # fmt: skip
    monkeypatch.delenv("WORKFLOW_IMAGE", raising=False)
    for name in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "CONTAINER_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    # The tests' ``usertasks`` module, committed to a repository of its own, then changed.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "usertasks.py"], ["commit", "-q", "-m", "tasks"]):
        subprocess.run([*git, *command], cwd=tasks, check=True, capture_output=True)
    with (tasks / "usertasks.py").open("a") as module:
        module.write("\n# changed after the commit\n")
    describe = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=tasks, text=True,
                              check=True, capture_output=True).stdout.strip()  # fmt: skip
    assert describe.endswith("-dirty")
    (id,) = _deposit(server, {"pipeline": "checkout", "function": "usertasks.double",
                              "parameters": {"x": 5}})  # fmt: skip
    runner("checkout")
    assert _provenance(_finished(server, id)) == _here(code={"usertasks": {"git": describe}})
    assert _found(server, describe.removesuffix("-dirty")) == {id}
