"""The buckets page in a real Chromium: queued and running works, who runs them, time
used against the timeout, filters in the URL, and refreshes without a reload."""

from __future__ import annotations

from typing import Any

import httpx
from harness import Server


def test_running_works_show_runner_host_and_time_against_timeout(
    server: Server, page: Any, shoot: Any
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/work", json=[
            {"pipeline": "pulsar", "timeout": 600, "parameters": {"i": i}} for i in range(4)
        ] + [{"pipeline": "frb", "parameters": {"i": 9}}]).raise_for_status()
        (running,) = http.post("/buckets/withdraw", json={
            "pipelines": ["pulsar"], "limit": 1, "runner": "runner-7", "host": "node12",
            "lease": 60}).json()  # fmt: skip
    page.goto(f"{server.url}/#/buckets")
    row = page.locator(f'tr[data-id="{running["id"]}"]')
    row.wait_for()
    assert page.locator("table.results tbody tr").count() == 5
    cells = row.locator("td").all_inner_texts()
    assert cells[1:3] == ["pulsar", "running"] and cells[4:7] == ["1", "runner-7", "node12"]
    assert "of 10 min" in cells[7]
    shoot(page, "all")

    page.get_by_label("Status").select_option("running")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=running**")
    page.get_by_text("1–1 of 1").wait_for()
    page.reload()
    page.get_by_text("1–1 of 1").wait_for()

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    httpx.post(f"{server.url}/buckets/complete", timeout=10, json={"works": [
        {"id": running["id"], "attempt": 1, "status": "success"}]}).raise_for_status()
    page.get_by_text("Nothing running right now.").wait_for(timeout=10_000)
    assert navigations == [], "refreshed without a reload"
    shoot(page, "none-running")


def test_pipeline_filter_and_empty_bucket(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/#/buckets")
    page.get_by_text("Nothing queued or running right now.").wait_for()
    httpx.post(f"{server.url}/buckets/work", timeout=10,
               json=[{"pipeline": "a"}, {"pipeline": "b"}, {"pipeline": "b"}]).raise_for_status()
    page.goto(f"{server.url}/#/buckets?pipeline=b")
    page.get_by_text("1–2 of 2").wait_for()
    assert set(page.locator("table.results tbody td:nth-child(2)").all_inner_texts()) == {"b"}


ROLES = {"WORKFLOW_OPERATOR_TOKENS": "alice=operator-token-0123",
         "WORKFLOW_VIEWER_TOKENS": "viewer-token-01234"}
OPERATOR = {"Authorization": "Bearer operator-token-0123"}


def test_a_paused_pipeline_says_why_its_works_wait_and_resumes(
    make_server: Any, browser: Any, page: Any, shoot_widths: Any
) -> None:
    server = make_server(env=ROLES)
    with httpx.Client(base_url=server.url, timeout=10, headers=OPERATOR) as http:
        http.post("/buckets/work", json=[{"pipeline": "held", "parameters": {"i": i}}
                                         for i in range(2)] + [{"pipeline": "flowing"}])
        http.post("/buckets/pipelines/held/pause").raise_for_status()

    viewer = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        seen = viewer.new_page()
        seen.add_init_script("localStorage.setItem('workflow.token', 'viewer-token-01234')")
        seen.goto(f"{server.url}/#/buckets")
        notice = seen.locator('[data-paused="held"]')
        notice.wait_for()
        assert seen.locator("[data-resume]").count() == 0, "a viewer may not resume"
    finally:
        viewer.close()

    page.add_init_script("localStorage.setItem('workflow.token', 'operator-token-0123')")
    page.goto(f"{server.url}/#/buckets")
    notice = page.locator('[data-paused="held"]')
    notice.wait_for()
    text = notice.inner_text()
    assert "held is paused: runners take none of its 2 queued works" in text
    assert "paused by alice" in text
    assert page.locator("[data-paused]").count() == 1, "flowing is not paused"
    rows = page.locator("table.results tbody tr")
    rows.nth(2).wait_for()
    marked = {row.locator("td").nth(1).inner_text(): row.locator(".badge").count()
              for row in rows.all()}  # fmt: skip
    assert marked == {"held": 1, "flowing": 0}, "each held work says why it waits"
    shoot_widths(page, "paused")

    page.get_by_role("button", name="Resume held").click()
    page.get_by_text("Resumed: runners take its works again.").wait_for()
    settings = httpx.get(f"{server.url}/buckets/pipelines/held", headers=OPERATOR, timeout=10)
    assert settings.json()["paused"] is False
    assert settings.json()["history"][-1]["by"] == "alice"
    notice.wait_for(state="detached", timeout=10_000)
    assert page.locator("table.results .badge").count() == 0
