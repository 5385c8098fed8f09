"""The README's first command: the demo runs end to end and shows results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from harness import free_port

pytestmark = pytest.mark.slow


def test_demo_deposits_works_off_and_shows_results(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "workflow", "demo", "--port", str(port),
                           "--count", "8", "--exit"],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "deposited 8 works to demo-search" in done.stdout
    assert "the runner finished (exit code 0)" in done.stdout
    assert "latest 8 of 8 results" in done.stdout
    assert "ZeroDivisionError" in done.stderr  # the runner's line for the failing work
    assert done.stdout.count("success") == 7 and "failure" in done.stdout
    assert f"http://127.0.0.1:{port}/docs" in done.stdout
    assert f"web UI  http://127.0.0.1:{port}/" in done.stdout
    assert (tmp_path / "workflow" / "demo.db").exists()  # the demo's own store
    assert not (tmp_path / "workflow" / "workflow.db").exists()
    with pytest.raises(httpx.TransportError):  # --exit stopped the server
        httpx.get(f"http://127.0.0.1:{port}/version", timeout=2)
