"""Web UI: time to first meaningful paint of the results search with 10^6 results.

A fresh SQLite file is seeded with ``--size`` finished works (default 10^6, the same
realistic seed as ``results_search.py``), ``workflow serve`` runs on it, and Debian's
Chromium (``/usr/bin/chromium``, driven by Playwright, headless) opens the search page:

- **cold**: a new browser context (empty cache) loads ``/#/results?FILTERS``; the time
  is measured from the start of navigation.
- **warm**: on an already open search page, the filters are typed into the form and
  submitted, as a user does; the time is measured from the submit.

The *meaningful paint* is the first animation frame after the results table (its rows,
or the "no match" message) entered the page: a ``MutationObserver`` installed before
the page's own scripts notes when it appears, and a ``requestAnimationFrame`` callback
then stamps the frame that paints it. The figures also give the part spent waiting for
``GET /results/works`` (Resource Timing), so a slow query shows as such.

Searches: the page with no filter, then the UI's typical filters (pipeline, failures of
a pipeline, a common tag, a rare tag, a user, the last day, a common word, a rare word,
and a deep page). Each is loaded ``--repeat`` times per mode (default 7) after one
untimed load; the table shows median and maximum.

Goal: under 1 s for the search page and for a filtered search.

Run: ``.venv/bin/python benchmarks/ui_paint.py`` (see ``--help``). ``--keep DIR`` keeps
the seeded file and reuses it on the next run with the same ``--size``. Progress goes to
stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from processes import machine, note, serve, workdir
from results_seed import COMMON_TAGS, DAY, PIPELINES, RARE_TAGS, USERS, seed, vocabulary
from rich.console import Console
from rich.table import Table

CHROMIUM = "/usr/bin/chromium"
# Without these Chromium tries to reach Google's services, which this network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GOAL_MS = 1000.0

#: Installed before the page's scripts: stamps the frame that paints the results.
WATCH = """
(() => {
  window.__painted = null;
  window.__submitted = null;
  window.__pending = false;
  document.addEventListener("submit", () => {
    window.__submitted = performance.now();
    window.__painted = null;
  }, true);
  const results = (node) => node.nodeType === 1 && node.closest("#table") &&
    (node.matches("tbody tr, .empty") || node.querySelector("tbody tr, .empty"));
  new MutationObserver((records) => {
    if (window.__painted !== null || window.__pending) return;
    if (!records.some((r) => [...r.addedNodes].some(results))) return;
    window.__pending = true;
    requestAnimationFrame(() => {
      window.__painted = performance.now();
      window.__pending = false;
    });
  }).observe(document, { childList: true, subtree: true });
})();
"""
#: The newest GET /results/works: when it started and ended (ms since navigation start).
REQUEST = """
(since) => {
  const all = performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/results/works") && e.startTime >= since);
  const last = all[all.length - 1];
  return last ? [last.startTime, last.responseEnd] : null;
}
"""


@dataclass
class Case:
    """One search, as the UI's URL parameters."""

    name: str
    filters: dict[str, str]
    timings: dict[str, list[float]] = field(default_factory=dict)
    waits: dict[str, list[float]] = field(default_factory=dict)
    shown: str = ""


def cases(end: float, common_word: str, rare_word: str) -> list[Case]:
    """The page with no filter, then the UI's typical filters."""
    pipeline = list(PIPELINES)[1]
    day_ago = dt.datetime.fromtimestamp(end - DAY).strftime("%Y-%m-%dT%H:%M")
    return [
        Case("search page", {}),
        Case("pipeline", {"pipeline": pipeline}),
        Case("pipeline failures", {"pipeline": pipeline, "status": "failure"}),
        Case("common tag", {"tag": COMMON_TAGS[0]}),
        Case("rare tag", {"tag": RARE_TAGS[0]}),
        Case("user", {"user": USERS[3]}),
        Case("last day", {"since": day_ago}),
        Case("common word", {"text": common_word}),
        Case("rare word", {"text": rare_word}),
        Case("page 100", {"page": "100"}),
    ]


def cold(browser: Any, base: str, case: Case) -> tuple[float, float, str]:
    """Load the search page in a fresh context: (paint ms, request ms, what it shows)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(WATCH)
        query = urlencode(case.filters)
        page.goto(f"{base}/#/results{'?' + query if query else ''}")
        return _measured(page, 0.0)
    finally:
        context.close()


def warm(page: Any, base: str, case: Case) -> tuple[float, float, str]:
    """Type the filters into an open search page and submit: (paint ms, request ms, shown)."""
    page.goto(f"{base}/#/results?text=warming-up-{time.monotonic_ns()}")
    page.wait_for_function("window.__painted !== null")
    page.evaluate("window.__painted = null; performance.clearResourceTimings()")
    form = page.locator("#search")
    for name in ("pipeline", "status", "tag", "user", "since", "text"):
        value = case.filters.get(name, "")
        if name == "status":
            form.locator(f'[name="{name}"]').select_option(value)
        else:
            form.locator(f'[name="{name}"]').fill(value)
    if "page" in case.filters:  # a deep page is reached through the URL, not the form
        page.evaluate(f"""() => {{ window.__submitted = performance.now(); window.__painted = null;
            location.hash = "#/results?page={case.filters['page']}"; }}""")
    else:
        form.get_by_role("button", name="Search").click()
    page.wait_for_function("window.__submitted !== null")
    return _measured(page, page.evaluate("window.__submitted"))


def _measured(page: Any, since: float) -> tuple[float, float, str]:
    page.wait_for_function("window.__painted !== null", timeout=60_000)
    painted = page.evaluate("window.__painted")
    request = page.evaluate(REQUEST, since)
    if request is None:
        raise RuntimeError("no GET /results/works was timed")
    shown = page.locator("#shown").inner_text() if page.locator("#shown").count() else "none"
    page.evaluate("window.__submitted = null")
    return painted - since, request[1] - request[0], shown


def measure(base: str, all_cases: list[Case], repeat: int) -> None:
    """Every case, cold and warm, ``repeat`` times each after one untimed load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.add_init_script(WATCH)
            for case in all_cases:
                for mode in ("cold", "warm"):
                    runs = []
                    for n in range(repeat + 1):
                        if mode == "cold":
                            runs.append(cold(browser, base, case))
                        else:
                            runs.append(warm(page, base, case))
                        if n == 0:
                            runs.clear()  # untimed
                    case.timings[mode] = [r[0] for r in runs]
                    case.waits[mode] = [r[1] for r in runs]
                    case.shown = runs[-1][2]
                    median = statistics.median(case.timings[mode])
                    note(f"{case.name} {mode}: median {median:.0f} ms ({case.shown})")
            context.close()
        finally:
            browser.close()


def table(all_cases: list[Case], size: int) -> Table:
    out = Table(title=f"Results search page with {size:,} results: ms to the painted table")
    for column in ("search", "filters", "shows", "cold p50", "cold max", "of it the request",
                   "warm p50", "warm max", "of it the request", f"< {GOAL_MS:.0f} ms"):
        out.add_column(column, justify="left" if column in ("search", "filters", "shows")
                       else "right")  # fmt: skip
    for case in all_cases:
        worst = max(max(case.timings["cold"]), max(case.timings["warm"]))
        figures = []
        for mode in ("cold", "warm"):
            timings = case.timings[mode]
            figures += [f"{statistics.median(timings):.0f}", f"{max(timings):.0f}",
                        f"{statistics.median(case.waits[mode]):.0f}"]  # fmt: skip
        out.add_row(case.name, urlencode(case.filters) or "-", case.shown, *figures,
                    "yes" if worst < GOAL_MS else "NO")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="finished works to seed (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed loads per search and mode (default: %(default)s)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the seeded file here, and reuse it if it is there")
    args = parser.parse_args()
    if args.size < 1000 or args.repeat < 1:
        parser.error("--size must be at least 1000 and --repeat at least 1")
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is missing: apt-get install chromium")

    began = time.perf_counter()
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "ui-paint-")
        path = folder / f"ui-results-{args.size}.db"
        marker = folder / f"ui-results-{args.size}.json"
        if path.exists() and marker.exists():
            end = json.loads(marker.read_text())["end"]
            note(f"reusing {path} ({args.size:,} finished works)")
            seed_s = 0.0
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            end = float(int(time.time()))
            note(f"{args.size:,} finished works: seeding ...")
            started = time.perf_counter()
            seed(f"sqlite:///{path.resolve()}", args.size, vocabulary(end))
            seed_s = time.perf_counter() - started
            marker.write_text(json.dumps({"end": end}))
            note(f"seeded in {seed_s:.0f} s")
        vocab = vocabulary(end)
        all_cases = cases(end, vocab.common_words()[0], vocab.rare_words()[0])
        with serve(f"sqlite:///{path.resolve()}", folder / "server.log") as (base, _):
            measure(base, all_cases, args.repeat)
    runtime = time.perf_counter() - began

    Console(width=170).print(table(all_cases, args.size))
    print(f"seeding {seed_s:.0f} s; total runtime {runtime:.0f} s")
    print(json.dumps({
        "benchmark": "ui_paint", "size": args.size, "repeat": args.repeat,
        "results": [{"search": c.name, "filters": c.filters, "shows": c.shown,
                     **{f"{m}_{k}_ms": round(f(c.timings[m]), 1) for m in ("cold", "warm")
                        for k, f in (("p50", statistics.median), ("max", max))},
                     **{f"{m}_request_p50_ms": round(statistics.median(c.waits[m]), 1)
                        for m in ("cold", "warm")}} for c in all_cases],
        "goal_ms": GOAL_MS, "seed_s": round(seed_s, 1), "runtime_s": round(runtime, 1),
        "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
