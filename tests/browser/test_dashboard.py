"""The dashboard in a real Chromium against a real ``workflow serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from harness import Server

from workflow.client import Client
from workflow.history import ErrorInfo
from workflow.wire import Outcome, Withdraw


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
        want = Withdraw(pipelines=["vela"], limit=1, lease=60)
        (work,) = client.withdraw(want)
        _count(page, "vela", "running").filter(has_text="1").wait_for()
        client.complete_many([Outcome(id=work["id"], attempt=work["attempt"], status="success")])
        (failing,) = client.withdraw(want)
        error = ErrorInfo(type="E", message="m")
        client.complete_many([Outcome(id=failing["id"], attempt=failing["attempt"],
                                      status="failure", error=error)])  # fmt: skip
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
    secret = "s3cret-token-01234567"
    server = make_server(env={"WORKFLOW_TOKENS": secret})
    reply = httpx.post(f"{server.url}/buckets/work", json=[{"pipeline": "guarded"}],
                       headers={"Authorization": f"Bearer {secret}"}, timeout=10)  # fmt: skip
    reply.raise_for_status()
    page.goto(server.url)
    page.get_by_label("This server needs an access token.").wait_for()
    shoot(page, "token")
    page.get_by_label("This server needs an access token.").fill("s3cret-token-01234567")
    page.get_by_role("button", name="Use token").click()
    _count(page, "guarded", "queued").filter(has_text="1").wait_for()


def test_no_token_form_and_no_error_when_none_is_needed(server: Server, page: Any) -> None:
    page.goto(server.url)
    page.get_by_text("No pipelines yet").wait_for()
    assert not page.get_by_label("This server needs an access token.").is_visible()
    assert not page.locator("#banner").is_visible()


PLOTTING = '''
from pathlib import Path
from png import png

def plot(work, n, out):
    path = Path(out) / f"{work.id}.png"
    path.write_bytes(png(24 + n, 16))
    return {"n": n}, [], [str(path)]
'''


def test_a_real_runner_finishing_work_shows_live_and_its_plot_loads(
    make_server: Any, page: Any, shoot: Any, tmp_path: Path
) -> None:
    archive, scratch, tasks = tmp_path / "archive", tmp_path / "scratch", tmp_path / "tasks"
    for folder in (archive, scratch, tasks):
        folder.mkdir()
    (tasks / "plotting.py").write_text(PLOTTING)
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive)})
    works = [{"pipeline": "imaging", "function": "plotting.plot", "retries": 0,
              "parameters": {"n": n, "out": str(scratch)}} for n in range(2)]  # fmt: skip
    ids = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, json=works,
                     timeout=10).json()  # fmt: skip
    page.goto(server.url)
    _count(page, "imaging", "queued").filter(has_text="2").wait_for()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    env = {**os.environ, "WORKFLOW_URL": server.url, "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(tasks), str(Path(__file__).parents[1])])}
    for id in ids:
        done = subprocess.run([sys.executable, "-m", "workflow", "run", "imaging", "--lives", "1",
                               "--archive", str(archive)], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        finished = ids.index(id) + 1
        _count(page, "imaging", "success").filter(has_text=str(finished)).wait_for()
        assert _count(page, "imaging", "queued").inner_text() == str(2 - finished)
    assert navigations == [], "updated without a reload"
    shoot(page, "after-runner")

    first = ids[0]
    page.goto(f"{server.url}/#/work/{first}")
    image = page.locator("img.plot")
    image.wait_for()
    page.wait_for_function("document.querySelector('img.plot').complete")
    assert image.evaluate("img => img.naturalWidth") in (24, 25)
    plot = httpx.get(f"{server.url}/buckets/work/{first}", timeout=10).json()["plots"][0]
    assert plot.startswith(str(archive)), "the runner archived the plot"
    shoot(page, "plot-from-runner")


def test_counts_link_to_their_lists_and_the_latest_failures_show(
    server: Server, page: Any, shoot_widths: Any
) -> None:
    ids = _deposit(server, "lofar", 9)
    _deposit(server, "meerkat", 2)
    _deposit(server, "askap", 1)
    with Client(server.url) as client:
        works = client.withdraw(Withdraw(pipelines=["lofar"], limit=7, lease=60,
                                         runner="r1", host="node3"))  # fmt: skip
        outcomes = [Outcome(id=w["id"], attempt=w["attempt"], status="success") for w in works[:4]]
        outcomes += [Outcome(id=w["id"], attempt=w["attempt"], status="failure",
                             error=ErrorInfo(type="CalibrationError", message=(
                                 f"no phase solution for beam {n} " + "x" * 200)))
                     for n, w in enumerate(works[4:6])]  # fmt: skip
        client.complete_many(outcomes)
    failed = works[5]["id"]
    retry = httpx.post(f"{server.url}/buckets/work/{works[4]['id']}/retry", json={},
                       timeout=10).json()["id"]  # fmt: skip
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(server.url)
    card = page.locator('[data-pipeline="lofar"]')
    _count(page, "lofar", "failure").filter(has_text="2").wait_for()
    expected = {"queued": "#/buckets?pipeline=lofar&status=queued",
                "running": "#/buckets?pipeline=lofar&status=running",
                "success": "#/results?pipeline=lofar&status=success",
                "failure": "#/results?pipeline=lofar&status=failure",
                "cancelled": "#/results?pipeline=lofar&status=cancelled"}
    for status, href in expected.items():
        assert card.locator(f'[data-status="{status}"] a').get_attribute("href") == href
    assert card.locator('[data-fact="oldest"] a').get_attribute("href") == expected["queued"]
    hour = card.locator('[data-fact="hour"] a').get_attribute("href")
    assert hour.startswith("#/results?pipeline=lofar&since=")
    rate = card.locator('[data-fact="failure-rate"] a').get_attribute("href")
    assert rate.startswith("#/results?pipeline=lofar&status=failure&since=")

    failures = page.locator(".latest-failures [data-failure]")
    assert failures.count() == 2
    newest = page.locator(f'.latest-failures [data-failure="{failed}"]')
    cells = newest.locator("[data-cell]").all_inner_texts()
    assert cells[0].endswith("ago") and cells[1] == "lofar"
    assert cells[2].startswith("CalibrationError: no phase solution for beam 1 xxx")
    assert cells[2].endswith("…"), "a long message is shortened"
    assert cells[3] == f"…{failed[-8:]}"
    other = page.locator(f'.latest-failures [data-failure="{works[4]["id"]}"]')
    assert other.locator("a.mark").get_attribute("href") == f"#/work/{retry}"

    scale = card.locator(".y-scale").inner_text().split()
    assert scale == ["10", "5", "0"], "6 works finished this minute: a scale up to 10"
    assert card.locator(".x-scale").inner_text().split() == ["60", "min", "ago", "30", "now"]
    main = page.locator("main").bounding_box()
    assert main["width"] >= 1390, "the page uses the screen's width"
    tops = {round(c.bounding_box()["y"]) for c in page.locator("article.card").all()}
    assert len(tops) == 1, "three cards in one row"
    shoot_widths(page, "dashboard")

    card.locator('[data-status="failure"] a').click()
    page.wait_for_url("**/#/results?pipeline=lofar&status=failure")
    page.get_by_text("1–2 of 2").wait_for()
    page.go_back()
    newest.locator('[data-cell="work"] a').first.click()
    page.wait_for_url(f"**/#/work/{failed}")
    page.locator("section.outcome").wait_for()
    page.go_back()
    _count(page, "lofar", "queued").click()
    page.wait_for_url("**/#/buckets?pipeline=lofar&status=queued")
    page.get_by_text("1–3 of 3").wait_for()  # 2 never taken, and the retry
    assert len(ids) == 9
