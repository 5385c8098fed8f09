"""The Runners page in a real Chromium, with real ``workflow run`` processes: a runner
shows with what it takes and the work it holds, offline after ``kill -9`` once its lease
has passed (its held work called out), stopped after SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import Server


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A server that looks for expired leases only every 30 s: a runner killed while it
    holds a work shows offline with the work still held."""
    return make_server(env={"WORKFLOW_REAP_INTERVAL": "30"})


def test_runners_show_online_then_offline_after_kill_and_stopped_after_sigterm(
        server: Server, runner: Any, page: Any, shoot_widths: Any) -> None:  # fmt: skip
    page.goto(f"{server.url}/#/runners")
    page.get_by_text("No runner on record.").wait_for()
    killed = runner("beamline-a,beamline-b", "usertasks.slow", "--lease", "2",
                    "--name", "id11-a", "--tags", "gpu")  # fmt: skip
    stopping = runner("calibration", "--lease", "2", "--name", "id11-b")
    (work,) = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, json=[
        {"pipeline": "beamline-a", "tags": ["gpu"], "parameters": {"seconds": 60}}],
        timeout=10).json()  # fmt: skip
    row = page.locator('tr[data-state="online"]', has_text="id11-a")
    row.locator(f'a[href="#/work/{work}"]').wait_for(timeout=15_000)
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "online" and cells[2].startswith("1 ")
    assert cells[3] == "beamline-a, beamline-b; tags gpu" and cells[4] == "1 at once"
    assert cells[7] == "usertasks.slow"
    assert f"pid {killed.pid}" in row.locator("th").inner_text()
    page.locator('tr[data-state="online"]', has_text="id11-b").wait_for()
    shoot_widths(page, "online")

    killed.kill()
    offline = page.locator('tr[data-state="offline"]', has_text="id11-a")
    offline.wait_for(timeout=15_000)
    assert "its works return to the queue when their leases expire" in offline.inner_text()
    stopping.send_signal(signal.SIGTERM)
    stopping.communicate(timeout=60)
    page.locator('tr[data-state="stopped"]', has_text="id11-b").wait_for(timeout=10_000)
    summary = page.locator("#summary").inner_text().split()
    assert summary == ["0", "online", "1", "offline", "1", "stopped"]
    page.locator("tr", has_text="id11-a").locator(f'a[href="#/work/{work}"]').click()
    page.wait_for_url(f"**/#/work/{work}")
    page.goto(f"{server.url}/#/runners")
    page.locator('tr[data-state="offline"]', has_text="id11-a").wait_for()
    shoot_widths(page, "offline-and-stopped")
