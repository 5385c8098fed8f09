"""The work detail page in a real Chromium: fields, JSON, the history with errors,
tracebacks and provenance, a plot that really loads, products, and paths outside the
archive refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from png import png


def test_detail_shows_history_plots_and_refuses_paths_outside_the_archive(
    make_server: Any, page: Any, shoot: Any, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    (archive / "day").mkdir(parents=True)
    (archive / "day" / "fit.png").write_bytes(png(40, 30))
    (archive / "day" / "cube.h5").write_bytes(b"HDF-ish")
    (tmp_path / "secret.png").write_bytes(png())
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive)})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": "true"}, json=[
            {"pipeline": "detail", "retries": 1, "backoff": 0, "parameters": {"dm": 56.7},
             "tags": ["fit"]}]).json()  # fmt: skip
        claim = {"pipelines": ["detail"], "runner": "r1", "host": "node3", "lease": 60}
        (first,) = http.post("/buckets/withdraw", json=claim).json()
        http.post("/buckets/complete", json={"works": [{
            "id": id, "attempt": first["attempt"], "status": "failure",
            "error": {"type": "ValueError", "message": "bad fit",
                      "traceback": "Traceback (most recent call last):\n  line 1\nValueError"},
        }]}).raise_for_status()  # fmt: skip
        (second,) = http.post("/buckets/withdraw", json=claim).json()
        http.post("/buckets/complete", json={"works": [{
            "id": id, "attempt": second["attempt"], "status": "success",
            "results": {"snr": 12.5},
            "plots": [str(archive / "day" / "fit.png"), str(tmp_path / "secret.png"),
                      "../secret.png"],
            "products": [str(archive / "day" / "cube.h5")],
            "provenance": {"python": "3.11.7", "host": "node3", "runner": "0.1.0",
                           "code": {"usertasks": {"git": "abc1234-dirty"}, "json": "stdlib",
                                    "yaml": {"distribution": "PyYAML", "version": "6.0.4"}},
                           "graph": "1a2b3c4d5e6f"},
        }]}).raise_for_status()  # fmt: skip

    page.goto(f"{server.url}/#/work/{id}")
    page.locator(".timeline li.attempt").nth(1).wait_for()
    assert page.locator("h1 .status").inner_text() == "success"
    assert page.locator('[data-field="pipeline"]').inner_text() == "detail"
    assert '"dm": 56.7' in page.locator("pre.json").first.inner_text()
    assert '"snr": 12.5' in page.locator("pre.json").nth(1).inner_text()
    attempts = page.locator(".timeline li.attempt")
    assert "attempt 1: failure" in attempts.nth(0).inner_text()
    assert "ValueError: bad fit" in attempts.nth(0).inner_text()
    assert "r1 on node3" in attempts.nth(0).inner_text()
    attempts.nth(0).locator("summary", has_text="traceback").click()
    assert "most recent call last" in attempts.nth(0).locator("pre.trace").inner_text()
    assert attempts.nth(0).locator(".provenance").count() == 0
    assert attempts.nth(1).locator(".provenance").inner_text() == (
        "Python 3.11.7 · usertasks git abc1234-dirty · yaml PyYAML 6.0.4 · graph 1a2b3c4d… · "
        "runner 0.1.0 on node3")

    image = page.locator("img.plot")
    image.wait_for()
    page.wait_for_function("document.querySelector('img.plot').complete")
    assert image.evaluate("img => img.naturalWidth") == 40
    refused = page.locator(".plots .refused")
    refused.nth(1).wait_for()
    assert refused.count() == 2 and "outside the archive" in refused.nth(0).inner_text()
    assert page.locator(".products a", has_text="download").count() == 1
    assert page.locator("img.plot").count() == 1, "nothing from outside is shown"
    shoot(page, "detail")


def test_unknown_work_says_so(server: Any, page: Any) -> None:
    page.goto(f"{server.url}/#/work/0000000000000000deadbeef")
    page.get_by_text("There is no work with this id.").wait_for()


#: Archive files whose scripts, should they ever run as the UI, would leave a marker in
#: the UI's localStorage holding the token they could read there.
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" '
       'height="30" fill="teal"/><script>localStorage.setItem("ran-svg", '
       'localStorage.getItem("workflow.token")); document.title = "ran"</script></svg>')
HTML = ('<!doctype html><title>report</title><p>A report.</p><script>localStorage.setItem('
        '"ran-html", localStorage.getItem("workflow.token")); document.title = "ran"</script>')
ADMIN = {"Authorization": "Bearer admin-token-0123456789"}


def _open_in_a_new_tab(page: Any, url: str) -> Any:
    """What "Open in new tab" does with a link or an image: the same browser, a new tab."""
    from playwright.sync_api import Error

    tab = page.context.new_page()
    try:
        tab.goto(url)
    except Error as error:  # a file served as an attachment downloads instead
        assert "Download is starting" in str(error), error
    page.wait_for_timeout(300)
    return tab


def test_archive_files_never_run_script_as_the_ui(make_server: Any, page: Any, shoot: Any,
                                                  tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "evil.svg").write_text(SVG)
    (archive / "fit.png").write_bytes(png(40, 30))
    (archive / "report.html").write_text(HTML)
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive),
                              "WORKFLOW_ADMIN_TOKENS": "admin-token-0123456789",
                              "WORKFLOW_VIEWER_TOKENS": "viewer-token-0123456789"})  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10, headers=ADMIN) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": "true"},
                          json=[{"pipeline": "evil", "retries": 0}]).json()  # fmt: skip
        (work,) = http.post("/buckets/withdraw", json={"pipelines": ["evil"]}).json()
        http.post("/buckets/complete", json={"works": [{
            "id": id, "attempt": work["attempt"], "status": "success",
            "plots": [str(archive / "evil.svg"), str(archive / "fit.png")],
            "products": [str(archive / "report.html")]}]}).raise_for_status()  # fmt: skip

    page.add_init_script("localStorage.setItem('workflow.token', 'viewer-token-0123456789')")
    page.goto(f"{server.url}/#/work/{id}")
    page.wait_for_function("[...document.querySelectorAll('img.plot')].length === 2 && "
                           "[...document.querySelectorAll('img.plot')].every(i => i.complete)")
    widths = page.locator("img.plot").evaluate_all("all => all.map(i => i.naturalWidth)")
    assert widths == [40, 40], "both plots, the SVG too, still show"
    attempt = page.locator(".timeline li.attempt").first.inner_text()
    assert "reported by admin-token-1" in attempt, "the token that reported the outcome"
    tabs = [_open_in_a_new_tab(page, src) for src in
            page.locator("img.plot").evaluate_all("all => all.map(i => i.src)")]  # fmt: skip
    for link in page.locator(".plots a, .products a").all():
        tabs.append(_open_in_a_new_tab(page, link.evaluate("a => a.href")))
        if link.get_attribute("target") == "_blank":  # and the plain click the UI offers
            with page.context.expect_page() as opened:
                link.click()
            tabs.append(opened.value)  # which closes itself if the file downloads
            page.wait_for_timeout(300)
    assert len(tabs) >= 3
    stolen = page.evaluate("[localStorage.getItem('ran-svg'), localStorage.getItem('ran-html')]")
    assert stolen == [None, None], "an archive file's script ran as the UI"
    shown = [tab for tab in tabs if not tab.is_closed() and tab.url != "about:blank"]
    assert any("evil.svg" in tab.url for tab in shown), "the SVG opens in a tab"
    for tab in shown:
        assert tab.title() != "ran", tab.url
        assert tab.evaluate("self.origin") == "null", f"{tab.url} has an origin, not a sandbox"
        assert "token" not in tab.url, "a link carries no access token"
    assert page.evaluate("localStorage.getItem('workflow.token')") == "viewer-token-0123456789"
    with page.expect_download() as saved:
        page.locator(".products a", has_text="download").click()
    assert saved.value.suggested_filename == "report.html"
    shoot(page, "desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "phone")


def test_the_page_of_a_running_work_shows_its_end_as_it_comes(server: Any, page: Any,
                                                              shoot: Any) -> None:  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": "true"},
                          json=[{"pipeline": "live-end", "retries": 0}]).json()  # fmt: skip
        (taken,) = http.post("/buckets/withdraw", json={"pipelines": ["live-end"],
                                                        "runner": "r1", "lease": 60}).json()
        page.goto(f"{server.url}/#/work/{id}")
        page.locator("h1 .status", has_text="running").wait_for()
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        http.post("/buckets/complete", json={"works": [{
            "id": id, "attempt": taken["attempt"], "status": "success",
            "results": {"snr": 9.5}}]}).raise_for_status()  # fmt: skip
    page.locator("h1 .status", has_text="success").wait_for(timeout=5000)
    assert '"snr": 9.5' in page.locator("pre.json").nth(1).inner_text()
    assert navigations == [], "updated in place, without a reload"
    shoot(page, "ended")


def _fail_twice(http: httpx.Client, pipeline: str, **work: Any) -> str:
    """A work that failed both its attempts, on runner r1 of node3, with a long message."""
    (id,) = http.post("/buckets/work", params={"return_ids": "true"}, json=[
        {"pipeline": pipeline, "retries": 1, "backoff": 0, **work}]).json()  # fmt: skip
    claim = {"pipelines": [pipeline], "runner": "r1", "host": "node3", "lease": 60}
    for n in (1, 2):
        (taken,) = http.post("/buckets/withdraw", json=claim).json()
        http.post("/buckets/complete", json={"works": [{
            "id": id, "attempt": taken["attempt"], "status": "failure",
            "error": {"type": "CalibrationError", "message": f"attempt {n}: no phase solution "
                      "for beam 17 " + "after 40 iterations " * 8,
                      "traceback": "Traceback (most recent call last):\n  frame\n"},
        }]}).raise_for_status()  # fmt: skip
    return id  # type: ignore[no-any-return]


def test_the_outcome_comes_first(server: Any, page: Any, shoot_widths: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        id = _fail_twice(http, "triage", parameters={"beam": 17})
    page.goto(f"{server.url}/#/work/{id}")
    outcome = page.locator("section.outcome")
    outcome.wait_for()
    page.locator(".actions-panel").wait_for()
    titles = page.locator(".detail > section > h2").all_inner_texts()
    assert titles[:4] == ["Outcome", "Actions", "Log", "Fields"], titles
    assert outcome.locator('[data-outcome="status"]').inner_text() == "failure"
    error = outcome.locator('[data-outcome="error"]').inner_text()
    assert error.startswith("CalibrationError: attempt 2: no phase solution for beam 17")
    message = outcome.locator('[data-outcome="error"] .message').inner_text()
    assert message.rstrip().endswith("after 40 iterations"), "the whole message, uncut"
    assert "traceback" in error, "and its traceback, folded"
    assert outcome.locator('[data-outcome="where"]').inner_text() == "r1 on node3"
    assert outcome.locator('[data-outcome="attempts"]').inner_text() == "2 of at most 2"
    box = outcome.bounding_box()
    assert box["y"] + box["height"] < page.viewport_size["height"], "seen without scrolling"
    shoot_widths(page, "work")


def test_config_and_notify_are_fields_folded_when_empty(server: Any, page: Any,
                                                        shoot_widths: Any) -> None:  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        plain = _fail_twice(http, "settings")
        told = _fail_twice(http, "settings", notify={"slack": {"channel_id": "C0FRB"}},
                           config={"teams": ["pulsar", "frb"]})  # fmt: skip
    page.goto(f"{server.url}/#/work/{plain}")
    notify = page.locator('details[data-nested="notify"]')
    notify.wait_for()
    assert notify.get_attribute("open") is None, "nothing set: folded"
    assert notify.locator("summary").inner_text() == "nothing set"
    assert not page.locator('[data-field="notify.slack.channel_id"]').is_visible()
    config = page.locator('details[data-nested="config"]')
    assert config.get_attribute("open") is not None
    assert page.locator('[data-field="config.archive.products"]').inner_text() == "copy"
    assert page.locator('[data-field="config.orgs"]').inner_text() == "chimefrb"
    assert "{" not in page.locator('[data-field="config"]').inner_text(), "no raw JSON"

    page.goto(f"{server.url}/#/work/{told}")
    notify = page.locator('details[data-nested="notify"]')
    notify.wait_for()
    assert notify.get_attribute("open") is not None
    assert notify.locator("summary").inner_text() == "1 set"
    assert page.locator('[data-field="notify.slack.channel_id"]').inner_text() == "C0FRB"
    assert page.locator('[data-field="config.teams"]').inner_text() == "pulsar, frb"
    page.locator('[data-field="config"]').scroll_into_view_if_needed()
    shoot_widths(page, "settings")


def test_a_queued_work_says_why_it_waits(server: Any, page: Any, shoot_widths: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ahead, waiting = http.post("/buckets/work", params={"return_ids": "true"}, json=[
            {"pipeline": "held-back", "priority": 5},
            {"pipeline": "held-back", "priority": 2}]).json()  # fmt: skip
        http.post("/buckets/pipelines/held-back/pause").raise_for_status()
    page.goto(f"{server.url}/#/work/{waiting}")
    why = page.locator('[data-outcome="why"]')
    why.locator("li").first.wait_for()
    codes = why.locator("li").evaluate_all("items => items.map(i => i.dataset.code)")
    assert codes == ["paused", "no-runner", "behind"]
    assert "its pipeline held-back is paused" in why.inner_text()
    assert "no online runner takes pipeline held-back at site local: no runner is online" in (
        why.inner_text())  # fmt: skip
    assert why.locator('[data-code="no-runner"] a').get_attribute("href") == "#/runners"
    assert "1 queued work of held-back comes before it" in why.inner_text()
    shoot_widths(page, "why")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/buckets/pipelines/held-back/resume").raise_for_status()
        http.post("/buckets/runners", json={"id": "r1", "pipelines": ["held-back"]}
                  ).raise_for_status()  # fmt: skip
    page.goto(f"{server.url}/#/work/{ahead}")
    next_in_line = page.locator('[data-outcome="why"]')
    next_in_line.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-outcome=\"why\"]').innerText.includes('next in line')")
