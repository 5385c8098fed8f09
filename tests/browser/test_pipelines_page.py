"""The Pipelines page in a real Chromium: a run's stages and steps with their works as
links, cancel and retry; schedules with their next run, paused and resumed."""

from __future__ import annotations

from typing import Any

import httpx

CONFIG = {"version": "2", "name": "page-grid", "defaults": {"site": "local"},
          "pipeline": {"runs_on": "sm", "steps": [
              {"name": "page-grid", "stage": 1, "matrix": {"n": [1, 2, 3]},
               "work": {"function": "m.f", "parameters": {"n": "${{ matrix.n }}"}}},
              {"name": "page-summary", "stage": 2, "work": {"function": "m.f"}}]}}  # fmt: skip


def test_runs_and_schedules_with_operator_actions(server: Any, page: Any,
                                                  shoot_widths: Any) -> None:  # fmt: skip
    run = httpx.post(f"{server.url}/pipelines", json=CONFIG, timeout=10).json()
    schedule = httpx.post(f"{server.url}/pipelines", timeout=10, json={
        **CONFIG, "name": "page-nightly",
        "schedule": {"cronspec": "0 3 * * *", "lives": 5}}).json()  # fmt: skip
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/#/pipelines")
    card = page.locator(f'section.run[data-run="{run["id"]}"]')
    card.wait_for()
    assert card.get_attribute("data-status") == "running"
    step = card.locator('.step[data-step="page-grid"]')
    assert step.get_attribute("data-status") == "running"
    assert "0 of 3 succeeded" in step.inner_text() and "runs on sm" in step.inner_text()
    assert card.locator('.step[data-step="page-summary"]').get_attribute("data-status") == "created"
    assert step.locator("a").count() == 3
    row = page.locator(f'tr[data-schedule="{schedule["id"]}"]')
    assert "0 3 * * *" in row.inner_text() and "5" in row.inner_text()
    shoot_widths(page, "running")

    card.get_by_role("button", name="Cancel").click()
    page.locator(f'section.run[data-run="{run["id"]}"][data-status="cancelled"]').wait_for()
    shown = httpx.get(f"{server.url}/pipelines/{run['id']}", timeout=10).json()
    assert shown["status"] == "cancelled"
    page.locator(f'section.run[data-run="{run["id"]}"]').get_by_role(
        "button", name="Retry failed steps").click()  # fmt: skip
    page.locator(f'section.run[data-run="{run["id"]}"][data-status="running"]').wait_for()
    row.get_by_role("button", name="Pause").click()
    page.locator(f'tr[data-schedule="{schedule["id"]}"]', has_text="paused").wait_for()
    resume = page.locator(f'tr[data-schedule="{schedule["id"]}"]')
    resume.get_by_role("button", name="Resume").click()
    page.locator(f'tr[data-schedule="{schedule["id"]}"]', has_text="active").wait_for()
    shoot_widths(page, "after-actions")
    first = page.locator(f'section.run[data-run="{run["id"]}"] .step-works a').first
    target = first.get_attribute("href")
    first.click()
    page.wait_for_url(f"**/{target}")
    page.locator("h1", has_text="Work").wait_for()
