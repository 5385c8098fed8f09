"""The work detail page in a real Chromium: fields, JSON, the history with errors and
tracebacks, a plot that really loads, products, and paths outside the archive refused."""

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
