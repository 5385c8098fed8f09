"""The runners on record, with real ``workflow run`` processes: listed as they start,
offline after ``kill -9`` once their lease has passed, stopped after SIGTERM; and the
reasons ``workflow buckets why`` gives from them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from harness import Server, until

pytestmark = pytest.mark.slow


def _runners(server: Server) -> dict[str, dict[str, Any]]:
    reply = httpx.get(f"{server.url}/buckets/runners", timeout=10)
    reply.raise_for_status()
    return {r["name"]: r for r in reply.json()}


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workflow", *args],
                          env={**os.environ, "WORKFLOW_URL": server.url, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_runner_is_listed_then_offline_after_kill_and_stopped_after_sigterm(
        server: Server, runner: Any) -> None:  # fmt: skip
    killed = runner("registry", "usertasks.slow", "--lease", "2", "--name", "killed")
    listed = until(lambda: _runners(server).get("killed"))
    assert listed["state"] == "online" and listed["pipelines"] == ["registry"]
    assert listed["runs"] == "usertasks.slow" and listed["pid"] == killed.pid
    (id,) = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, json=[
        {"pipeline": "registry", "parameters": {"seconds": 60}}], timeout=10).json()
    holding = until(lambda: _runners(server)["killed"]["works"])
    assert [w["id"] for w in holding] == [id]
    shown = _cli(server, "runners")
    assert shown.returncode == 0, shown.stderr
    assert "killed" in shown.stdout and "online" in shown.stdout and id in shown.stdout
    killed.kill()
    gone = time.monotonic()
    until(lambda: _runners(server)["killed"]["state"] == "offline", 15)
    assert time.monotonic() - gone >= 1.0  # not before its lease (2 s) has passed
    stopping = runner("registry-2", "--lease", "2", "--name", "stopping")
    until(lambda: _runners(server).get("stopping"))
    stopping.send_signal(signal.SIGTERM)
    stopping.communicate(timeout=60)
    assert stopping.returncode == 0
    after = _runners(server)
    assert after["stopping"]["state"] == "stopped" and after["killed"]["state"] == "offline"
    as_json = json.loads(_cli(server, "runners", "--json").stdout)
    assert {r["name"]: r["state"] for r in as_json} == {"killed": "offline", "stopping": "stopped"}


def test_why_names_the_runners_there_are_and_a_work_waiting_out_its_backoff(
        server: Server, runner: Any) -> None:  # fmt: skip
    runner("elsewhere", "--name", "other-runner")
    until(lambda: _runners(server).get("other-runner"))
    ids = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, json=[
        {"pipeline": "nobody", "priority": 5}, {"pipeline": "nobody", "priority": 1},
        {"pipeline": "retried", "function": "usertasks.boom", "parameters": {"x": 1},
         "retries": 2, "backoff": 600}], timeout=10).json()  # fmt: skip
    said = _cli(server, "buckets", "why", ids[1])
    assert said.returncode == 0, said.stderr
    no_runner, behind = said.stdout.strip().splitlines()
    assert no_runner == ("no-runner: no online runner takes pipeline nobody at site local: the "
                         "online runners take other work: other-runner takes pipelines "
                         "elsewhere")  # fmt: skip
    assert behind.startswith("behind: 1 queued work of nobody comes before it")
    runner("retried", "--name", "retrying")
    backoff = until(lambda: [r for r in json.loads(_cli(server, "buckets", "why", ids[2],
                                                         "--json").stdout)["reasons"]
                              if r["code"] == "backoff"])  # fmt: skip
    assert backoff[0]["until"] > time.time() + 500
