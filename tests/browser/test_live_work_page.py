"""A running work's page in a real Chromium, with real ``workflow run`` processes: its
log grows as the attempt writes (a line printed while the page is open shows within
2 s), and a graph's nodes are coloured as they start and end."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from graph_tasks import three_in_a_row
from harness import Server, deposit, until

pytestmark = pytest.mark.slow


def _status(server: Server, id: str) -> str:
    return str(httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()["status"])


def test_the_log_grows_on_the_page_while_the_work_runs(
        server: Server, runner: Any, page: Any, shoot_widths: Any) -> None:  # fmt: skip
    runner("live-page")
    script = ("echo first line; sleep 3; echo second line at $(date +%s.%N); "
              "echo a warning >&2; sleep 8")  # fmt: skip
    id = deposit(server, pipeline="live-page", command=["sh", "-c", script])
    page.goto(f"{server.url}/#/work/{id}")
    log = page.locator("pre.log")
    log.get_by_text("first line").wait_for(timeout=15_000)
    assert "running" in page.locator(".log-state").inner_text()
    page.wait_for_function("document.querySelector('pre.log').textContent.includes('second line')",
                           timeout=10_000)  # fmt: skip
    seen = time.time()
    printed = float(log.inner_text().split("second line at ", 1)[1].split()[0])
    assert seen - printed < 2.0, f"shown {seen - printed:.2f} s after the print"
    assert "a warning" in log.inner_text()
    shoot_widths(page, "running")
    until(lambda: _status(server, id) == "success", 30)
    page.locator(".log-state", has_text="ended").wait_for(timeout=15_000)
    assert page.locator("pre.log").inner_text().startswith("first line\n")
    shoot_widths(page, "ended")


def test_a_graphs_nodes_are_coloured_as_they_run(
        server: Server, runner: Any, page: Any, shoot_widths: Any) -> None:  # fmt: skip
    runner("live-graph")
    id = deposit(server, pipeline="live-graph", graph=three_in_a_row(6))
    page.goto(f"{server.url}/#/work/{id}")
    node = lambda name, state: page.locator(  # noqa: E731
        f'svg.graph g.node[data-node="{name}"][data-state="{state}"]')
    node("second", "running").wait_for(timeout=15_000)
    assert node("first", "success").count() == 1 and node("third", "waiting").count() == 1
    assert _status(server, id) == "running"
    shoot_widths(page, "node-two-running")
    until(lambda: _status(server, id) == "success", 30)
    node("third", "success").wait_for(timeout=15_000)
    assert node("second", "success").count() == 1
