"""The dashboard in a real Chromium against a real ``workflow serve``."""

from __future__ import annotations

from typing import Any

import httpx
from harness import Server

from workflow.client import Client


def _deposit(server: Server, pipeline: str, count: int) -> list[str]:
    works = [{"pipeline": pipeline, "function": "m.f", "parameters": {"i": i}, "retries": 0}
             for i in range(count)]  # fmt: skip
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=works, timeout=10)  # fmt: skip
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def _count(page: Any, pipeline: str, status: str) -> Any:
    return page.locator(f'[data-pipeline="{pipeline}"] [data-status="{status}"] .n')


def test_empty_dashboard_says_how_to_start(server: Server, page: Any, shoot: Any) -> None:
    page.goto(server.url)
    page.get_by_text("No pipelines yet").wait_for()
    assert page.locator("#live").inner_text() == "live"
    shoot(page, "empty")


def test_counts_change_live_when_a_work_finishes(server: Server, page: Any, shoot: Any) -> None:
    _deposit(server, "vela", 3)
    _deposit(server, "crab", 1)
    page.goto(server.url)
    _count(page, "vela", "queued").filter(has_text="3").wait_for()
    assert _count(page, "crab", "queued").inner_text() == "1"
    assert page.locator('[data-pipeline="vela"] [data-fact="oldest"]').inner_text() != "—"
    shoot(page, "queued")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    with Client(server.url) as client:
        (work,) = client.claim(["vela"], limit=1, lease=60)
        _count(page, "vela", "running").filter(has_text="1").wait_for()
        client.complete_many([{"id": work["id"], "attempt": work["attempt"],
                               "status": "success"}])  # fmt: skip
        (failing,) = client.claim(["vela"], limit=1, lease=60)
        client.complete_many([{"id": failing["id"], "attempt": failing["attempt"],
                               "status": "failure", "error": {"type": "E", "message": "m"}}])
    _count(page, "vela", "failure").filter(has_text="1").wait_for()
    assert _count(page, "vela", "success").inner_text() == "1"
    assert _count(page, "vela", "queued").inner_text() == "1"
    assert navigations == [], "updated without a reload"
    card = page.locator('[data-pipeline="vela"]')
    card.locator('[data-fact="hour"]', has_text="2").wait_for()
    assert card.locator('[data-fact="failure-rate"]').inner_text() == "50 %"
    assert card.locator("svg.chart rect.done").count() == 1, "this minute's bar"
    assert card.locator("svg.chart rect.failed").count() == 1, "with its failures"
    shoot(page, "after")


def test_a_paused_pipeline_is_marked(server: Server, page: Any) -> None:
    _deposit(server, "paused-one", 1)
    httpx.post(f"{server.url}/buckets/pipelines/paused-one/pause", timeout=10).raise_for_status()
    page.goto(server.url)
    page.locator('[data-pipeline="paused-one"] .badge', has_text="paused").wait_for()


def test_with_tokens_the_page_asks_for_one_and_then_shows_data(
    make_server: Any, page: Any, shoot: Any
) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": "s3cret"})
    reply = httpx.post(f"{server.url}/buckets/work", json=[{"pipeline": "guarded"}],
                       headers={"Authorization": "Bearer s3cret"}, timeout=10)  # fmt: skip
    reply.raise_for_status()
    page.goto(server.url)
    page.get_by_label("This server needs an access token.").wait_for()
    shoot(page, "token")
    page.get_by_label("This server needs an access token.").fill("s3cret")
    page.get_by_role("button", name="Use token").click()
    _count(page, "guarded", "queued").filter(has_text="1").wait_for()


def test_no_token_form_and_no_error_when_none_is_needed(server: Server, page: Any) -> None:
    page.goto(server.url)
    page.get_by_text("No pipelines yet").wait_for()
    assert not page.get_by_label("This server needs an access token.").is_visible()
    assert not page.locator("#banner").is_visible()
