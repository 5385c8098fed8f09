"""Ewoks' own example graphs give the same outputs in our engines as in Ewoks.

Ewoks (ewokscore 5.0.0, ewoksppf 3.0.0, ewoks 6.0.0) lives in ``<repo>/.venv-ewoks``,
built on first use; ``tests/ewoks_compare.py`` runs there with this repository on the
path, each graph through Ewoks (``core`` for acyclic graphs without conditions, else
``ppf``, the only Ewoks engine for conditions, error links and cycles) and through each
of our engines, with Ewoks' example tasks unchanged. Where ewoksppf's own end result
varies from run to run (a node run once per input, in its pool), ours must be one of the
ends Ewoks gives over several runs.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import venvs
from venvs import PYTHON_VARIABLES, REPO

pytestmark = pytest.mark.slow
EWOKS = ["ewokscore==5.0.0", "ewoksppf==3.0.0", "ewoks==6.0.0", "distributed>=2024.1"]
#: Further Ewoks runs where ours differs from ewoksppf's first end.
PPF_AGAIN = 6
SCRIPT = Path(__file__).resolve().parents[1] / "ewoks_compare.py"
#: acyclic, conditional with an error handler, cyclic, self-triggering, a triangle of
#: conditional links, nodes without outputs, the demo, empty, and nested sub-graphs.
GRAPHS = ["acyclic1", "acyclic2", "acyclic3", "cyclic1", "demo", "empty", "self_trigger",
          "triangle1", "subgraph"]  # fmt: skip


@functools.cache
def ewoks_python() -> Path:
    probe = "import ewokscore, ewoksppf, ewoks, distributed"
    return venvs.built(REPO / ".venv-ewoks", EWOKS, probe)


def compare(*args: str) -> Any:
    """What ``ewoks_compare.py`` prints, as JSON (``venvs.run`` kills what ewoksppf's
    pool leaves behind)."""
    env = {k: v for k, v in os.environ.items() if k not in PYTHON_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    done = venvs.run([str(ewoks_python()), str(SCRIPT), *args], env, 240, REPO)
    lines = [line[2:] for line in done.stdout.splitlines() if line.startswith("@@")]
    return json.loads(lines[-1]) if lines else json.loads(done.stdout)


def test_the_examples_are_all_compared() -> None:
    assert compare("--names") == GRAPHS


@pytest.mark.parametrize("name", GRAPHS)
def test_our_engines_give_ewoks_outputs(name: str) -> None:
    found = compare(name)
    theirs = found["ewoks"]
    ends = [theirs["end"]]
    for engine, ours in found["ours"].items():
        # ewoksppf's own end may vary from run to run (see the module's docstring):
        # where ours differs, ask Ewoks again a few times.
        for _ in range(PPF_AGAIN if theirs["engine"] == "ppf" else 0):
            if ours["end"] in ends:
                break
            ends.append(compare("--ewoks-only", name)["ewoks"]["end"])
        assert ours["end"] in ends, (engine, theirs["engine"])
        if "all" in theirs:
            assert ours["all"] == theirs["all"], engine


def test_ewokscore_tasks_know_their_node_and_a_failure_is_gone_past_as_in_ewoks() -> None:
    """ewokscore tasks get their node's id and label; with ``raise_on_error`` false the
    outputs a failed task set are kept, Ewoks' output selectors pick the same values
    (by label, id and task identifier, renamed, merged or by node), and an input model
    validates; the node downstream of the failure does not run with us (ewokscore's
    core engine runs it with the outputs the failed task set)."""
    found = compare("--semantics")
    theirs = found["ewoks"]
    assert theirs["selected"] == {"who": "first who", "y": 6.0}
    assert theirs["by_node"]["a"] == {"label": "first who", "node": "a", "y": 2}
    assert theirs["by_node"]["b"] == {"early": 20}
    for engine, ours in found["ours"].items():
        assert ours["selected"] == theirs["selected"], engine
        assert ours["by_node"] == theirs["by_node"], engine
        assert ours["ran"] == ["a", "b", "d"], engine
        assert [(f["node"], f["type"]) for f in ours["failed"]] == [("b", "ValueError")], engine
