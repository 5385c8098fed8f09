"""Notifications in a real Chromium: an operator sets a pipeline's alert rules on its
dashboard card and sees one fire; a work's page shows whom it told of what, and how it
went (delivered, waiting for its next try), with the deliveries in its timeline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from harness import Server
from receivers import Receiver

from workflow.client import Client
from workflow.wire import Outcome, Withdraw


def _server(make_server: Callable[..., Server], slack: Receiver) -> Server:
    targets = {"slack": {"type": "slack", "webhook": f"{slack.url}/slack"},
               "portal": {"type": "webhook", "url": "http://127.0.0.1:9/down",
                          "secret": "a-secret-of-sixteen-or-more"}}  # fmt: skip
    return make_server(env={"WORKFLOW_NOTIFY_TARGETS": json.dumps(targets),
                            "WORKFLOW_NOTIFY_BACKOFF": "30"})  # fmt: skip


def test_an_operator_sets_alert_rules_on_the_dashboard_and_sees_one_fire(
        make_server: Callable[..., Server], page: Any, shoot_widths: Any) -> None:  # fmt: skip
    slack = Receiver().start()
    try:
        server = _server(make_server, slack)
        Client(server.url).deposit([{"pipeline": "watched"} for _ in range(3)])
        page.goto(f"{server.url}/#/")
        card = page.locator('article[data-pipeline="watched"]')
        editor = card.locator('details[data-editor="rules"]')
        editor.locator("summary", has_text="Alert rules (0)").click()
        editor.get_by_text("Targets on this server: portal (webhook), slack (slack).").wait_for()
        editor.get_by_role("button", name="Add a rule").click()
        row = editor.locator("fieldset.rule").nth(0)
        row.get_by_label("name").fill("failing")
        row.get_by_label("threshold (%)").fill("40")
        row.get_by_label("over (min)").fill("10")
        row.get_by_label("at least (works)").fill("2")
        assert not row.get_by_label("for (min)").is_visible()  # oldest-queued's only
        row.get_by_label("tell (targets)").fill("slack")
        editor.get_by_role("button", name="Add a rule").click()
        second = editor.locator("fieldset.rule").nth(1)
        second.get_by_label("name").fill("nobody")
        second.get_by_label("when").select_option("no-runner")
        assert not second.get_by_label("threshold (%)").is_visible()
        second.get_by_label("tell (targets)").fill("nowhere")
        shoot_widths(page, "editing")
        editor.get_by_role("button", name="Save rules").click()
        card.locator("[data-state]", has_text="Rules not saved").wait_for()
        assert "no target 'nowhere'" in card.locator("[data-state]").inner_text()
        second.get_by_label("tell (targets)").fill("slack, portal")
        editor.get_by_role("button", name="Save rules").click()
        card.locator("[data-state]", has_text="Rules saved: 2.").wait_for()
        rules = httpx.get(f"{server.url}/buckets/pipelines/watched").json()["rules"]
        assert rules == [{"name": "failing", "kind": "failure-rate", "to": ["slack"],
                          "threshold": 0.4, "window": 600, "minimum": 2, "limit": None},
                         {"name": "nobody", "kind": "no-runner", "to": ["slack", "portal"],
                          "threshold": None, "window": None, "minimum": None, "limit": None}]
        # Three works queued, no runner: the no-runner rule fires, on Slack and the card.
        badge = card.locator(".badge.alert", has_text="alert: nobody")
        badge.wait_for()
        assert "no online runner takes watched" in badge.get_attribute("title")
        line = card.locator(".alert-line[data-alert=\"nobody\"]")
        assert "3 works are queued and no online runner takes watched" in line.inner_text()
        assert slack.wait(1)[0].json["text"].count("rule nobody (no-runner) fired") == 1
        assert card.locator("summary", has_text="Alert rules (2)").count() == 1
        shoot_widths(page, "firing")
    finally:
        slack.stop()


def test_a_works_page_shows_its_notifications_and_their_deliveries(
        make_server: Callable[..., Server], page: Any, shoot_widths: Any) -> None:  # fmt: skip
    slack = Receiver().start()
    try:
        server = _server(make_server, slack)
        client = Client(server.url)
        [id] = client.deposit([{"pipeline": "told", "retries": 0, "notify": {
            "slack": {"channel_id": "C042"}, "on": ["failure"],
            "to": [{"target": "portal", "on": ["failure", "retrying"]}]}}])  # fmt: skip
        [work] = client.withdraw(Withdraw(pipelines=["told"]))
        error = {"type": "ValueError", "message": "bad frame 17"}
        client.complete(Outcome(id=id, attempt=work["attempt"], status="failure", error=error))
        slack.wait(1)
        deadline = time.monotonic() + 20
        while not any(e["kind"] == "delivery" for e in client.get(id)["history"]):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        page.goto(f"{server.url}/#/work/{id}")
        section = page.locator('section[data-section="notices"]')
        said = "It tells Slack (C042) of failure; portal of failure, retrying."
        section.get_by_text(said).wait_for()
        delivered = section.locator(f'tr[data-notice="{id}/1/failure/slack"]')
        delivered.get_by_text("delivered").wait_for()
        waiting = section.locator(f'tr[data-notice="{id}/1/failure/portal"]')
        waiting.get_by_text("waiting").wait_for()
        assert "next try" in waiting.inner_text() and "Connection refused" in waiting.inner_text()
        told = page.locator(".timeline li.delivery")
        assert told.count() == 1
        assert "told slack of failure (attempt 1): delivered (1 try)" in " ".join(
            told.inner_text().split())  # fmt: skip
        assert f"key {id}/1/failure" in told.inner_text()
        shoot_widths(page, "work")
    finally:
        slack.stop()
