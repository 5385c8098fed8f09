"""``workflow buckets why ID`` against a real server: why a queued work waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from harness import Server

pytestmark = pytest.mark.slow


def _why(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workflow", "buckets", "why", *args],
                          env={**os.environ, "WORKFLOW_URL": server.url},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_why_says_paused_then_behind_and_answers_for_other_states(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ahead, mine = http.post("/buckets/work", params={"return_ids": "true"}, json=[
            {"pipeline": "waits", "priority": 5}, {"pipeline": "waits", "priority": 1}]).json()
        http.post("/buckets/pipelines/waits/pause").raise_for_status()
        # A runner takes them (test_runner_registry.py has the reasons about runners).
        http.post("/buckets/runners", json={"id": "r1", "pipelines": ["waits"]}).raise_for_status()
    said = _why(server, mine)
    assert said.returncode == 0, said.stderr
    paused, behind = said.stdout.strip().splitlines()
    assert paused.startswith("paused: its pipeline waits is paused")
    assert behind == ("behind: 1 queued work of waits comes before it: a higher priority, "
                      "or the same and older")  # fmt: skip
    answer = json.loads(_why(server, mine, "--json").stdout)
    assert [r["code"] for r in answer["reasons"]] == ["paused", "behind"]
    assert _why(server, ahead).stdout.strip().splitlines()[0].startswith("paused:")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/pipelines/waits/resume").raise_for_status()
    assert _why(server, ahead).stdout.strip() == (
        f"{ahead} is queued and next in line: a runner of its pipeline takes it")
    missing = _why(server, "no-such-work")
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "no work no-such-work" in missing.stderr
