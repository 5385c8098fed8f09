"""The results page in a real Chromium: filters narrow the table and live in the URL,
columns sort, pages turn, and the search exports as CSV and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from harness import Server


def _seed(server: Server, count: int) -> list[str]:
    works = [{"pipeline": "vela" if i % 2 else "crab", "user": "ann" if i % 3 else "bob",
              "tags": ["nightly"] if i % 4 == 0 else [], "retries": 0,
              "parameters": {"i": i, "note": "glitch" if i == 7 else "quiet"}}
             for i in range(count)]  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ids = http.post("/buckets/work", params={"return_ids": "true"}, json=works).json()
        claimed = {w["id"]: w for w in http.post(
            "/buckets/withdraw", json={"pipelines": ["vela", "crab"], "limit": count}).json()}
        body = [{"id": id, "attempt": claimed[id]["attempt"],
                 "status": "failure" if i % 5 == 0 else "success",
                 **({"error": {"type": "Bad", "message": "no"}} if i % 5 == 0 else {})}
                for i, id in enumerate(ids)]  # fmt: skip
        assert all(r["ok"] for r in http.post("/buckets/complete", json={"works": body}).json())
    return ids  # type: ignore[no-any-return]


def _rows(page: Any) -> Any:
    return page.locator("table.results tbody tr")


def test_filters_narrow_the_table_and_survive_a_reload(server: Server, page: Any,
                                                       shoot: Any) -> None:  # fmt: skip
    _seed(server, 60)
    page.goto(f"{server.url}/#/results")
    page.get_by_text("1–50 of 60").wait_for()
    assert _rows(page).count() == 50
    shoot(page, "all")

    page.get_by_label("Status").select_option("failure")
    page.get_by_label("Pipelines").fill("crab")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("1–6 of 6").wait_for()  # i = 0, 10, 20, 30, 40, 50
    assert "status=failure" in page.url and "pipeline=crab" in page.url
    assert set(_rows(page).locator(".status").all_inner_texts()) == {"failure"}
    shoot(page, "filtered")

    page.reload()
    page.get_by_text("1–6 of 6").wait_for()
    assert page.get_by_label("Status").input_value() == "failure"
    assert page.get_by_label("Pipelines").input_value() == "crab"

    page.get_by_label("Text").fill("glitch")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Pipelines").fill("")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("1–1 of 1").wait_for()
    page.get_by_label("Text").fill("nothing-like-this")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("No finished work matches this search.").wait_for()
    shoot(page, "empty")


def test_sorting_and_pages(server: Server, page: Any) -> None:
    _seed(server, 60)
    page.goto(f"{server.url}/#/results")
    page.get_by_text("1–50 of 60").wait_for()
    page.get_by_role("link", name="pipeline", exact=True).click()
    page.wait_for_url("**sort=pipeline**")
    page.locator('th[aria-sort="descending"]').wait_for()
    pipelines = _rows(page).locator("td:nth-child(2)").all_inner_texts()
    assert pipelines == sorted(pipelines, reverse=True)
    page.get_by_role("link", name="Next →").click()
    page.get_by_text("51–60 of 60").wait_for()
    assert _rows(page).count() == 10 and "page=2" in page.url
    page.get_by_role("link", name="← Previous").click()
    page.get_by_text("1–50 of 60").wait_for()


def test_export_of_the_current_search(server: Server, page: Any) -> None:
    ids = _seed(server, 12)
    page.goto(f"{server.url}/#/results?user=bob")
    page.get_by_text("1–4 of 4").wait_for()  # i = 0, 3, 6, 9
    with page.expect_download() as caught:
        page.get_by_role("button", name="Export CSV").click()
    lines = Path(caught.value.path()).read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith('"id","pipeline","status","user"')
    assert {line.split(",")[0].strip('"') for line in lines[1:]} == {ids[i] for i in (0, 3, 6, 9)}
    with page.expect_download() as caught:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(Path(caught.value.path()).read_text())
    assert sorted(d["id"] for d in exported) == sorted(ids[i] for i in (0, 3, 6, 9))


LONG = "no phase solution for beam 17 " + "after 40 iterations " * 10


def test_failures_show_their_error_and_whether_they_were_retried(
    server: Server, page: Any, shoot_widths: Any
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ids = http.post("/buckets/work", params={"return_ids": "true"}, json=[
            {"pipeline": "triage", "retries": 0, "parameters": {"beam": b}} for b in (1, 2, 3)
        ]).json()  # fmt: skip
        claimed = http.post("/buckets/withdraw", json={"pipelines": ["triage"], "limit": 3,
                                                       "runner": "r1", "host": "node3"}).json()
        attempt = {w["id"]: w["attempt"] for w in claimed}
        http.post("/buckets/complete", json={"works": [
            {"id": ids[0], "attempt": attempt[ids[0]], "status": "failure",
             "error": {"type": "CalibrationError", "message": LONG}},
            {"id": ids[1], "attempt": attempt[ids[1]], "status": "failure",
             "error": {"type": "KeyError", "message": "'dm'"}},
            {"id": ids[2], "attempt": attempt[ids[2]], "status": "success"},
        ]}).raise_for_status()  # fmt: skip
        retry = http.post(f"/buckets/work/{ids[0]}/retry", json={}).json()["id"]

    page.goto(f"{server.url}/#/results?pipeline=triage")
    page.get_by_text("1–3 of 3").wait_for()
    retried, plain, fine = (page.locator(f'tr[data-id="{id}"]') for id in ids)
    error = retried.locator("td.error")
    shown = error.inner_text()
    assert shown.startswith("CalibrationError: no phase solution for beam 17")
    assert shown.endswith("…") and len(shown) < len(LONG), "shortened"
    assert error.get_attribute("title") == f"CalibrationError: {LONG}", "whole on hover"
    assert plain.locator("td.error").inner_text() == "KeyError: 'dm'"
    assert fine.locator("td.error").inner_text() == ""
    mark = retried.locator(f'a[data-retried-as="{retry}"]')
    assert mark.inner_text() == f"retried as …{retry[-6:]}"
    assert plain.locator("a.mark").count() == 0 and fine.locator("a.mark").count() == 0
    shoot_widths(page, "results")
    page.set_viewport_size({"width": 390, "height": 844})
    line = retried.locator(".error-line")
    assert line.inner_text().startswith("CalibrationError: no phase solution")
    box = line.bounding_box()
    assert box["x"] + box["width"] <= 390, "on a phone, the error is in sight"
    page.set_viewport_size({"width": 1400, "height": 900})
    assert not line.is_visible(), "on a screen, it has its own column"

    mark.click()
    page.wait_for_url(f"**/#/work/{retry}")
    of = page.locator('section.outcome [data-outcome="retry-of"]')
    assert of.inner_text() == ids[0]
    page.goto(f"{server.url}/#/work/{ids[0]}")
    as_ = page.locator('section.outcome [data-outcome="retried-as"]')
    assert as_.inner_text() == retry
