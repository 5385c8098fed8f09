"""Operator actions on the work page, each changing what the API returns and recorded
with who did it; a viewer's token sees no action at all."""

from __future__ import annotations

from typing import Any

import httpx

OPERATOR = {"Authorization": "Bearer operator-token-0123"}
TWO_ROLES = {"WORKFLOW_OPERATOR_TOKENS": "alice=operator-token-0123",
             "WORKFLOW_VIEWER_TOKENS": "viewer-token-01234"}


def _deposit(server: Any, **work: Any) -> str:
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, timeout=10,
                       headers=OPERATOR, json=[{"pipeline": "acts", "retries": 0, **work}])
    reply.raise_for_status()
    return reply.json()[0]  # type: ignore[no-any-return]


def _get(server: Any, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/work/{id}", headers=OPERATOR,
                     timeout=10).json()  # type: ignore[no-any-return]


def _log_in(page: Any, server: Any, token: str, where: str) -> None:
    page.add_init_script(f"localStorage.setItem('workflow.token', '{token}')")
    page.goto(f"{server.url}/{where}")


def test_operator_changes_cancels_retries_and_deletes(make_server: Any, page: Any,
                                                      shoot: Any) -> None:  # fmt: skip
    server = make_server(env=TWO_ROLES)
    page.on("dialog", lambda dialog: dialog.accept())
    queued = _deposit(server, priority=2, parameters={"dm": 1})
    _log_in(page, server, "operator-token-0123", f"#/work/{queued}")
    # Actions are recorded under the token's name, shown in the header.
    page.get_by_text("alice · operator").wait_for()
    assert page.get_by_label("Recorded as").is_hidden()
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


def _pipeline(server: Any, name: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/pipelines/{name}", headers=OPERATOR,
                     timeout=10).json()  # type: ignore[no-any-return]


def test_operator_pauses_and_edits_a_pipeline_on_the_live_dashboard(
    make_server: Any, page: Any, shoot: Any
) -> None:
    server = make_server(env={"WORKFLOW_OPERATOR_TOKENS": "bob=operator-token-0123"})
    _deposit(server)
    _log_in(page, server, "operator-token-0123", "#/")
    card = page.locator('[data-pipeline="acts"]')
    card.get_by_role("button", name="Pause").click()
    card.get_by_text("Paused: runners get no work of it.").wait_for()
    card.locator(".badge", has_text="paused").wait_for()
    paused = _pipeline(server, "acts")
    assert paused["paused"] is True
    assert (paused["history"][-1]["action"], paused["history"][-1]["by"]) == ("pause", "bob")
    card.locator('[data-fact="changed"]', has_text="pause by bob").wait_for()

    card.get_by_text("Defaults for new works").click()
    card.get_by_label("Priority").fill("4")
    card.get_by_label("Timeout (s)").focus()
    page.wait_for_timeout(2500)  # two live updates: what is typed and focused stays
    assert card.get_by_label("Priority").input_value() == "4"
    assert card.get_by_label("Timeout (s)").evaluate("e => e === document.activeElement")
    card.get_by_label("Timeout (s)").fill("90")
    shoot(page, "editing-defaults")
    card.get_by_role("button", name="Save defaults").click()
    card.get_by_text("Defaults saved.").wait_for()
    settings = _pipeline(server, "acts")
    assert settings["defaults"] == {"priority": 4, "retries": None, "timeout": 90, "backoff": None,
                                    "notify": None}
    assert settings["history"][-1]["by"] == "bob"
    card.get_by_role("button", name="Resume").click()
    card.get_by_text("Resumed.").wait_for()
    assert _pipeline(server, "acts")["paused"] is False
    assert card.locator(".badge").is_hidden()

    card.get_by_text("Defaults for new works").click()
    assert card.get_by_label("Priority").input_value() == "4", "the saved value"
    card.get_by_label("Priority").fill("9")
    card.get_by_role("button", name="Save defaults").click()
    assert card.get_by_label("Priority").evaluate("e => e.validity.rangeOverflow"), \
        "the browser refuses it first"
    card.locator('form[data-act="defaults"]').evaluate("form => { form.noValidate = true; }")
    card.get_by_role("button", name="Save defaults").click()
    card.get_by_text("Not saved: defaults.priority").wait_for()
    assert _pipeline(server, "acts")["defaults"]["priority"] == 4
    shoot(page, "refused-defaults")


def test_bulk_actions_state_how_many_works_they_touch(make_server: Any, page: Any,
                                                      shoot: Any) -> None:  # fmt: skip
    server = make_server(env={"WORKFLOW_TOKENS": "ops=operator-token-0123"})
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    ids = [_deposit(server, priority=1) for _ in range(3)]
    other = _deposit(server, pipeline="other", priority=1)
    _log_in(page, server, "operator-token-0123", "#/buckets?pipeline=acts")
    page.locator("tr[data-id]").nth(2).wait_for()
    page.get_by_label("Priority").select_option("2")
    page.get_by_role("button", name="Set it on every matching queued work…").click()
    page.get_by_text("Set priority 2: 3 of 3 done.").wait_for()
    assert asked[-1] == "Set priority 2: this touches 3 works. Go ahead?"
    assert {_get(server, id)["priority"] for id in ids} == {2}
    assert _get(server, other)["priority"] == 1, "only the filter's pipeline"

    page.get_by_role("button", name="Cancel every matching work…").click()
    page.get_by_text("Cancel: 3 of 3 done.").wait_for()
    assert asked[-1] == "Cancel: this touches 3 works. Go ahead?"
    assert {_get(server, id)["status"] for id in ids} == {"cancelled"}
    assert _get(server, ids[0])["history"][-1]["by"] == "ops", "the token's name"
    page.get_by_text("Nothing queued or running in these pipelines right now.").wait_for()
    shoot(page, "buckets")

    page.goto(f"{server.url}/#/results?pipeline=acts&status=cancelled")
    page.locator("tr[data-id]").nth(2).wait_for()
    page.get_by_role("button", name="Retry every matching work…").click()
    page.get_by_text("Retry: 3 of 3 done.").wait_for()
    assert asked[-1] == "Retry: this touches 3 works. Go ahead?"
    copies = [_get(server, id)["history"][-1]["changes"]["as"] for id in ids]
    assert {_get(server, copy)["status"] for copy in copies} == {"queued"}
    shoot(page, "results")


def test_a_viewer_sees_no_actions(make_server: Any, page: Any, shoot: Any) -> None:
    server = make_server(env=TWO_ROLES)
    queued = _deposit(server)
    _log_in(page, server, "viewer-token-01234", f"#/work/{queued}")
    page.locator('[data-field="pipeline"]').wait_for()
    assert page.locator(".actions-panel").count() == 0
    assert page.locator("main button, main form").count() == 0
    assert page.locator("#who").is_hidden()
    shoot(page, "viewer")
    page.goto(f"{server.url}/#/")
    page.locator('[data-pipeline="acts"] [data-status="queued"] .n').wait_for()
    assert page.locator("main button, main details").count() == 0
    shoot(page, "viewer-dashboard")
    page.goto(f"{server.url}/#/buckets")
    page.locator("tr[data-id]").wait_for()
    assert page.locator("#bulk button").count() == 0
    page.goto(f"{server.url}/#/results")
    page.get_by_role("button", name="Export CSV").wait_for()
    assert page.get_by_role("button", name="Retry every matching work…").is_hidden()
    refused = httpx.post(f"{server.url}/buckets/work/{queued}/cancel", timeout=10,
                         headers={"Authorization": "Bearer viewer-token-01234"})  # fmt: skip
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


def test_a_failed_graph_work_is_retried_from_its_point_of_failure(
        make_server: Any, page: Any, shoot_widths: Any) -> None:  # fmt: skip
    server = make_server(env=TWO_ROLES)
    graph = {"nodes": [{"id": "a", "task_type": "method", "task_identifier": "builtins.int"}],
             "links": []}  # fmt: skip
    id = _deposit(server, graph=graph)
    httpx.post(f"{server.url}/buckets/work/{id}/cancel", headers=OPERATOR, timeout=10)
    _log_in(page, server, "operator-token-0123", f"#/work/{id}")
    choice = page.get_by_label("From the point of failure", exact=False)
    choice.wait_for()
    assert not choice.is_checked(), "ticked only for a work that failed"
    choice.check()
    shoot_widths(page, "retry-from-failure")
    page.get_by_role("button", name="Retry as a new work").click()
    page.wait_for_url(lambda url: id not in url)
    copy = _get(server, page.url.rsplit("/", 1)[-1])
    assert copy["graph"] == graph
    assert copy["history"][0]["changes"] == {"of": id, "from_failure": True}
    plain = _deposit(server, parameters={"x": 1})
    httpx.post(f"{server.url}/buckets/work/{plain}/cancel", headers=OPERATOR, timeout=10)
    page.goto(f"{server.url}/#/work/{plain}")
    page.get_by_role("button", name="Retry as a new work").wait_for()
    assert page.get_by_label("From the point of failure", exact=False).count() == 0
