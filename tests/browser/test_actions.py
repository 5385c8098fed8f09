"""Operator actions on the work page, each changing what the API returns and recorded
with who did it; a viewer's token sees no action at all."""

from __future__ import annotations

from typing import Any

import httpx

OPERATOR = {"Authorization": "Bearer op"}


def _deposit(server: Any, **work: Any) -> str:
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, timeout=10,
                       headers=OPERATOR, json=[{"pipeline": "acts", "retries": 0, **work}])
    reply.raise_for_status()
    return reply.json()[0]  # type: ignore[no-any-return]


def _get(server: Any, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/work/{id}", headers=OPERATOR,
                     timeout=10).json()  # type: ignore[no-any-return]


def _log_in(page: Any, server: Any, token: str, where: str) -> None:
    page.goto(f"{server.url}/#/")
    page.evaluate(f"localStorage.setItem('workflow.token', '{token}')")
    page.goto(f"{server.url}/{where}")


def test_operator_changes_cancels_retries_and_deletes(make_server: Any, page: Any,
                                                      shoot: Any) -> None:  # fmt: skip
    server = make_server(env={"WORKFLOW_TOKENS": "op", "WORKFLOW_VIEWER_TOKENS": "look"})
    page.on("dialog", lambda dialog: dialog.accept())
    queued = _deposit(server, priority=2, parameters={"dm": 1})
    _log_in(page, server, "op", f"#/work/{queued}")
    page.get_by_label("Recorded as").fill("alice")
    page.get_by_label("Recorded as").dispatch_event("change")
    page.get_by_label("Priority").select_option("5")
    page.get_by_label("Retries").select_option("3")
    page.get_by_role("button", name="Change").click()
    page.get_by_text("Change: done.").wait_for()
    changed = _get(server, queued)
    assert (changed["priority"], changed["retries"]) == (5, 3)
    assert changed["history"][-1]["action"] == "change"
    assert changed["history"][-1]["by"] == "alice"
    shoot(page, "changed")

    page.get_by_role("button", name="Cancel this work").click()
    page.get_by_text("Cancel: done.").wait_for()
    cancelled = _get(server, queued)
    assert cancelled["status"] == "cancelled" and cancelled["history"][-1]["by"] == "alice"
    assert page.locator("h1 .status").inner_text() == "cancelled"

    page.get_by_label("Parameters for the new work (JSON)").fill('{"dm": 7}')
    page.get_by_role("button", name="Retry as a new work").click()
    page.wait_for_url(lambda url: queued not in url)
    new_id = page.url.rsplit("/", 1)[-1]
    copy = _get(server, new_id)
    assert copy["status"] == "queued" and copy["parameters"] == {"dm": 7}
    assert copy["history"][0]["action"] == "retry-of" and copy["history"][0]["by"] == "alice"
    assert _get(server, queued)["history"][-1]["changes"] == {"as": new_id}
    page.get_by_role("button", name="Delete from the bucket").wait_for()
    shoot(page, "retried")

    page.get_by_role("button", name="Delete from the bucket").click()
    page.get_by_text("is gone").wait_for()
    assert httpx.get(f"{server.url}/buckets/work/{new_id}", headers=OPERATOR,
                     timeout=10).status_code == 404  # fmt: skip


def test_a_viewer_sees_no_actions(make_server: Any, page: Any, shoot: Any) -> None:
    server = make_server(env={"WORKFLOW_TOKENS": "op", "WORKFLOW_VIEWER_TOKENS": "look"})
    queued = _deposit(server)
    _log_in(page, server, "look", f"#/work/{queued}")
    page.locator('[data-field="pipeline"]').wait_for()
    assert page.locator(".actions-panel").count() == 0
    assert page.locator("main button, main form").count() == 0
    shoot(page, "viewer")
    refused = httpx.post(f"{server.url}/buckets/work/{queued}/cancel", timeout=10,
                         headers={"Authorization": "Bearer look"})  # fmt: skip
    assert refused.status_code == 403


def test_a_retried_work_links_both_ways(server: Any, page: Any) -> None:
    id = _deposit(server)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (work,) = http.post("/buckets/withdraw", json={"pipelines": ["acts"]}).json()
        http.post("/buckets/complete", json={"works": [
            {"id": id, "attempt": work["attempt"], "status": "success"}]}).raise_for_status()
        copy = http.post(f"/buckets/work/{id}/retry", json={}).json()
    page.goto(f"{server.url}/#/work/{id}")
    page.locator(".timeline li.action a", has_text=copy["id"]).click()
    page.wait_for_url(f"**/#/work/{copy['id']}")
    page.locator(".timeline li.action a", has_text=id).wait_for()
    assert not page.get_by_label("This server needs an access token.").is_visible()
