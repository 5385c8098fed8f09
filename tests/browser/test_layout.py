"""Every page at a phone's width without sideways scrolling of the page, and every
control reachable with the keyboard alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from harness import Server

PHONE = {"width": 390, "height": 844}
PAGES = ["#/", "#/buckets", "#/results", "#/results?status=failure", "#/work/{id}"]


@pytest.fixture
def seeded(server: Server) -> dict[str, str]:
    """A pipeline with a failed work (with a long traceback), one running and one queued."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        works = [{"pipeline": "phone", "retries": 0, "parameters": {"long": "x" * 300},
                  "tags": ["a-rather-long-tag-name", "another-one"]} for _ in range(3)]
        ids = http.post("/buckets/work", params={"return_ids": "true"}, json=works).json()
        claim = {"pipelines": ["phone"], "runner": "runner-with-a-long-name", "host": "node7"}
        (first,) = http.post("/buckets/withdraw", json=claim).json()
        http.post("/buckets/complete", json={"works": [{
            "id": first["id"], "attempt": 1, "status": "failure",
            "error": {"type": "ValueError", "message": "m " * 80,
                      "traceback": "Traceback (most recent call last):\n" + "  frame " * 60},
        }]}).raise_for_status()  # fmt: skip
        http.post("/buckets/withdraw", json=claim).raise_for_status()
    return {"failed": first["id"], "ids": ids}  # type: ignore[dict-item]


def _settled(page: Any) -> None:
    page.wait_for_function("!document.querySelector('main').innerText.includes('Loading…')"
                           " && !document.querySelector('main').innerText.includes('Searching…')")
    page.wait_for_timeout(200)


@pytest.mark.parametrize("where", PAGES)
def test_pages_fit_a_phone(server: Server, seeded: dict[str, str], browser: Any, shoot: Any,
                           where: str) -> None:  # fmt: skip
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server.url + "/" + where.format(id=seeded["failed"]))
        _settled(page)
        if where.startswith("#/work"):
            page.locator(".timeline li.attempt").wait_for()
        else:
            page.locator("main table, main .card").first.wait_for()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], f"{where}: the page is {wide} px wide"
        shoot(page, "phone")
    finally:
        context.close()


def _tab_through(page: Any, presses: int) -> list[str]:
    """What gets the focus, pressing Tab ``presses`` times: a label for each stop."""
    stops = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("""() => {
            const e = document.activeElement;
            return (e.getAttribute('aria-label') || e.labels?.[0]?.innerText || e.innerText
                    || e.name || e.tagName).trim().split('\\n')[0];
        }"""))
    return stops


def test_every_control_is_reachable_with_the_keyboard(server: Server, seeded: dict[str, str],
                                                      page: Any) -> None:  # fmt: skip
    page.goto(server.url + "/#/")
    page.locator('[data-pipeline="phone"] [data-act="pause"]').wait_for()
    stops = _tab_through(page, 30)  # the latest failures' and every count's links first
    for wanted in ("Skip to content", "Dashboard", "Buckets", "Results", "Recorded as",
                   "all failures →", "phone", "1 failure", "Pause", "Cancel queued…",
                   "Defaults for new works"):  # fmt: skip
        assert any(stop.startswith(wanted) for stop in stops), (wanted, stops)
    page.locator("main").focus()
    for _ in range(40):
        if _tab_through(page, 1) == ["Defaults for new works"]:
            break
    page.keyboard.press("Enter")  # opens the defaults editor
    assert _tab_through(page, 1) == ["Priority"]

    page.goto(server.url + "/#/results")
    page.locator("tr[data-id]").first.wait_for()
    page.locator("main").focus()
    stops = _tab_through(page, 45)  # each date field takes several stops
    for wanted in ("Text", "Pipelines", "Status", "Tags", "Created from", "Search",
                   "Export CSV", "Retry every matching work…", "pipeline"):  # fmt: skip
        assert any(stop.startswith(wanted) for stop in stops), (wanted, stops)
    page.keyboard.press("Shift+Tab")
    page.locator("main").focus()
    page.keyboard.press("Tab")
    page.keyboard.type("ValueError")
    page.keyboard.press("Enter")
    page.wait_for_url("**text=ValueError**")
    page.locator(f'tr[data-id="{seeded["failed"]}"]').wait_for()
