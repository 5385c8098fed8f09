"""CHIME's own ``workflow configs``, ``pipelines`` and ``schedules`` commands
(``workflow-core`` 1.12.3, in its own venv) against our server: deploy a configuration,
list and show its pipeline, stop it, and list and remove a schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from chime import chime_home, chime_python, run_chime_cli

pytestmark = pytest.mark.slow

CONFIG = """
version: "2"
name: chime-grid
defaults: {site: local, user: tester}
pipeline:
  steps:
    - name: chime-grid-step
      matrix: {alpha: [1, 2]}
      work:
        function: math.hypot
        parameters: {x: "${{ matrix.alpha }}", y: 1}
    - name: chime-grid-next
      stage: 2
      work: {function: math.fsum}
"""


def test_chime_cli_deploys_lists_shows_stops_and_manages_schedules(
        server: Any, tmp_path: Path) -> None:  # fmt: skip
    python = chime_python()
    env = chime_home(tmp_path, server.url)
    path = tmp_path / "grid.yaml"
    path.write_text(CONFIG)
    deployed = run_chime_cli(python, ["configs", "deploy", str(path)], env)
    (run,) = httpx.get(f"{server.url}/pipelines", timeout=10).json()
    assert run["id"] in deployed.stdout and "chime-grid" in deployed.stdout
    assert len(httpx.get(f"{server.url}/buckets/work", params={"pipeline": "chime-grid-step"},
                         timeout=10).json()) == 2  # fmt: skip

    listed = run_chime_cli(python, ["pipelines", "ls"], env)
    assert run["id"] in listed.stdout and "running" in listed.stdout
    configs = run_chime_cli(python, ["configs", "ls"], env)
    assert "chime-grid" in configs.stdout and "tester" in configs.stdout
    shown = run_chime_cli(python, ["pipelines", "ps", run["id"]], env)
    assert "chime-grid" in shown.stdout and "chime-grid-step" in shown.stdout

    stopped = run_chime_cli(python, ["configs", "stop", "chime-grid", run["id"]], env)
    assert run["id"] in stopped.stdout
    assert httpx.get(f"{server.url}/pipelines/{run['id']}", timeout=10).json()["status"] \
        == "cancelled"  # fmt: skip

    scheduled = tmp_path / "nightly.yaml"
    scheduled.write_text(CONFIG.replace("defaults:", "schedule: {cronspec: '0 3 * * *', "
                                        "lives: 2}\ndefaults:"))  # fmt: skip
    run_chime_cli(python, ["schedules", "deploy", str(scheduled)], env)
    (schedule,) = httpx.get(f"{server.url}/schedules", timeout=10).json()
    listed = run_chime_cli(python, ["schedules", "ls"], env)
    assert schedule["id"][:12] in listed.stdout and "chime-grid" in listed.stdout
    assert "active" in listed.stdout
    run_chime_cli(python, ["schedules", "rm", schedule["id"]], env)
    assert httpx.get(f"{server.url}/schedules", timeout=10).json() == []


def test_chime_queries_are_checked_against_an_allow_list(server: Any) -> None:
    for query in ('{"$where": "1"}', '{"user": "x"}', '{"id": {"$regex": "."}}', "[1]", "{"):
        refused = httpx.get(f"{server.url}/configs", params={"query": query}, timeout=10)
        assert refused.status_code == 422, (query, refused.text)
        assert refused.json()["field"].startswith("query"), refused.json()
    assert httpx.get(f"{server.url}/configs", params={"query": '{"id": {"$in": []}}'},
                     timeout=10).json() == []  # fmt: skip
    assert httpx.put(f"{server.url}/configs/cancel", params={"query": '{"id": "none"}'},
                     timeout=10).status_code == 304  # fmt: skip
