"""Pipelines with real processes: a configuration deployed with ``workflow pipelines
deploy`` runs its stages in order on a real runner, and ``kill -9`` of the server
between stages and in the middle of a stage's deposit neither duplicates nor loses a
work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, until

pytestmark = pytest.mark.slow

CONFIG = """
version: "2"
name: grid-search
defaults: {site: local, retries: 0}
pipeline:
  steps:
    - name: grid
      stage: 1
      matrix:
        alpha: [1, 2, 3]
        beta: {range: [7, 13, 2]}
      work:
        function: usertasks.echo
        parameters: {alpha: "${{ matrix.alpha }}", beta: "${{ matrix.beta }}"}
    - name: report
      stage: 2
      if: failure
      work: {function: usertasks.echo}
    - name: summary
      stage: 2
      work:
        function: usertasks.echo
        parameters: {best: "${{ pipeline.grid.results.alpha }}"}
"""


def _cli(server: Server, *args: str, stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "workflow", *args], input=stdin,
                          env={**os.environ, "WORKFLOW_URL": server.url, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _run(server: Server, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/pipelines/{id}", timeout=10).json()  # type: ignore[no-any-return]


def _work(server: Server, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()  # type: ignore[no-any-return]


def test_stages_run_in_order_on_a_real_runner(server: Server, runner: Any, tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(CONFIG)
    deployed = _cli(server, "pipelines", "deploy", str(path))
    assert deployed.returncode == 0, deployed.stderr
    id = deployed.stdout.strip()
    runner("grid,report,summary", "--concurrency", "2")
    run = until(lambda: (r := _run(server, id))["status"] != "running" and r, 60)
    assert run["status"] == "success", run
    grid, report, summary = run["steps"]
    assert [grid["status"], report["status"], summary["status"]] == [
        "success", "skipped", "success"]
    works = [_work(server, w) for w in grid["works"]]
    assert len(works) == 9 and {w["status"] for w in works} == {"success"}
    assert sorted((w["results"]["alpha"], w["results"]["beta"]) for w in works) == [
        (a, b) for a in (1, 2, 3) for b in (7, 9, 11)]
    (last,) = [_work(server, w) for w in summary["works"]]
    assert last["creation"] >= max(w["stop"] for w in works), "stage 2 only after all nine"
    assert last["parameters"] == {"best": 1}
    shown = _cli(server, "pipelines", "show", id)
    assert shown.returncode == 0 and "grid" in shown.stdout and "9/9" in shown.stdout
    listed = json.loads(_cli(server, "pipelines", "ls", "--json").stdout)
    assert [r["id"] for r in listed] == [id]
    wrong = _cli(server, "pipelines", "deploy", "-", stdin="version: '2'\nname: x\n")
    assert wrong.returncode == 2 and "pipeline: Field required" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_kill_9_between_stages_and_during_a_deposit_loses_and_duplicates_nothing(
        server: Server, runner: Any) -> None:  # fmt: skip
    work = {"function": "usertasks.double", "parameters": {"x": "${{ matrix.n }}"}}
    matrix = {"n": {"range": [0, 1500]}}
    config = {"version": "2", "name": "big", "defaults": {"site": "local", "retries": 0},
              "pipeline": {"steps": [
                  {"name": "wide", "stage": 1, "matrix": matrix, "work": work},
                  {"name": "wider", "stage": 2, "matrix": matrix, "work": work}]}}  # fmt: skip
    # Killed during the deploy's own deposit of stage 1 (the client may see it fail).
    replies: list[Any] = []
    deploying = threading.Thread(target=lambda: replies.append(httpx.post(
        f"{server.url}/pipelines", json=config, timeout=30)), daemon=True)  # fmt: skip
    deploying.start()
    time.sleep(0.3)
    server.kill()
    deploying.join(30)
    server.start()
    runs = httpx.get(f"{server.url}/pipelines", timeout=10).json()
    if not runs:  # killed before the run was recorded: deploy again, whole
        runs = [httpx.post(f"{server.url}/pipelines", json=config, timeout=60).json()]
    (run,) = runs
    process = runner("wide,wider", "--prefetch", "200")
    output: list[str] = []  # read as it comes: a full pipe would stop the runner
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    # Killed again while the runner works, and so between or in stages.
    for pause in (1.0, 1.5):
        time.sleep(pause)
        server.kill()
        time.sleep(0.5)
        server.start()
    deadline = time.monotonic() + 120
    while (done := _run(server, run["id"]))["status"] == "running" \
            and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.2)
    assert done["status"] == "success", (
        [(s["name"], s["status"], s["reason"], len(s["works"]), s["deposited"])
         for s in done["steps"]], httpx.get(f"{server.url}/buckets/counts", timeout=10).json())
    for step in done["steps"]:
        assert len(step["works"]) == len(set(step["works"])) == 1500
        assert step["succeeded"] == 1500
    counts = httpx.get(f"{server.url}/buckets/counts", timeout=10).json()
    assert counts["wide"] == {"success": 1500} and counts["wider"] == {"success": 1500}
    process.kill()


def test_a_schedule_is_deployed_listed_paused_resumed_and_removed(
        server: Server, tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "nightly.yaml"
    path.write_text(CONFIG.replace("defaults:", "schedule: {cronspec: '0 3 * * *', lives: 3, "
                                   "timezone: Europe/Paris}\ndefaults:"))  # fmt: skip
    deployed = _cli(server, "pipelines", "deploy", str(path))
    assert deployed.returncode == 0, deployed.stderr
    id = deployed.stdout.strip()
    assert "scheduled: 0 3 * * * (Europe/Paris), next at" in deployed.stderr
    (listed,) = json.loads(_cli(server, "schedules", "ls", "--json").stdout)
    assert (listed["id"], listed["status"], listed["lives"], listed["has_spawned"]) == (
        id, "active", 3, 0)
    assert listed["next_time"] > time.time()
    assert httpx.get(f"{server.url}/pipelines", timeout=10).json() == [], "no run yet"
    shown = _cli(server, "schedules", "ls")
    assert "grid-search" in shown.stdout and "0 3 * * * (Europe/Paris)" in shown.stdout
    assert _cli(server, "schedules", "pause", id).stdout.startswith(f"{id}: paused")
    assert _cli(server, "schedules", "resume", id).stdout.startswith(f"{id}: active")
    assert _cli(server, "schedules", "rm", id).stdout.strip() == f"{id}: removed"
    again = _cli(server, "schedules", "rm", id)
    assert again.returncode == 1 and again.stderr.strip() == f"error: no schedule {id}"
    bad = _cli(server, "pipelines", "deploy", "-", stdin=CONFIG.replace(
        "defaults:", "schedule: {cronspec: '61 * * * *'}\ndefaults:"))  # fmt: skip
    assert bad.returncode == 2 and "schedule.cronspec" in bad.stderr
