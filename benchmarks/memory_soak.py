"""The soak: server memory, latency and errors under sustained mixed load from many
clients. Is memory flat, and does anything fail?

One ``workflow serve`` on a fresh SQLite file runs for ``--minutes`` (default 10) under
a steady mix, all over HTTP:

- **deposit**: ``--clients`` clients (default 8) deposit ``--rate`` works a second
  between them, in batches of 50;
- **run**: ``--runners`` ``workflow run --prefetch 50 --concurrency 2`` processes
  (default 2) work them off (withdraw, heartbeat, complete in batches), so the results
  keep growing;
- **search**: ``--clients`` clients run the UI's searches in turn (no filter, a pipeline,
  failures, a tag, free text, a deep page), each about ten a second, and open work pages
  (``GET /buckets/work/{id}``);
- **dashboard**: two clients keep the live dashboard stream (``GET /ui/events``) open, as
  browser tabs do, reconnecting every minute.

Every 5 s the server's resident memory (``VmRSS`` from ``/proc``) is sampled. The first
``--warmup`` minutes (default 2) let caches and the SQLite page cache fill. After that
the table gives the RSS at the start and at the end, the largest sample, and the slope
of a least-squares line through the samples (MB per minute); latency percentiles per
request kind (p50, p95, p99, max) and error counts come with it. Any error is a failure
of the soak, as is memory that is not flat.

Goal: memory flat, meaning a slope under 0.5 MB/min and an end within 10 % of the
start of the measured stretch.

Run: ``.venv/bin/python benchmarks/memory_soak.py`` (see ``--help``). Progress goes to
stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from processes import clean_env, machine, note, serve, stop, workdir
from rich.console import Console
from rich.table import Table

from workflow.client import Client
from workflow.work import Work

PIPELINE = "soak"
SAMPLE_S = 5.0
GOAL_SLOPE_MB_PER_MIN = 0.5
GOAL_GROWTH = 0.10


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Load:
    """The mixed load's clients, each in a thread, with latencies and errors per kind."""

    def __init__(self, base: str, rate: float, stop_at: float):
        self.base, self.rate, self.stop_at = base, rate, stop_at  # rate: per depositor
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def timed(self, kind: str, call: Any) -> Any:
        began = time.perf_counter()
        try:
            return call()
        except Exception:  # noqa: BLE001 - counted, the load goes on
            with self.lock:
                self.errors[kind] = self.errors.get(kind, 0) + 1
            return None
        finally:
            with self.lock:
                self.latency.setdefault(kind, []).append(1000 * (time.perf_counter() - began))

    def depositor(self) -> None:
        with Client(self.base) as client:
            n = 0
            while time.time() < self.stop_at:
                batch = [Work(pipeline=PIPELINE, function="noop_tasks.noop", retries=0,
                              tags=[f"t{(n + i) % 7}"], parameters={"i": n + i, "note": "soak"})
                         for i in range(50)]  # fmt: skip
                ids = self.timed("deposit 50", lambda b=batch: client.deposit(b))
                if ids:
                    with self.lock:
                        self.ids.extend(ids[:5])
                n += 50
                time.sleep(50 / self.rate)

    def searcher(self) -> None:
        searches = [{}, {"pipeline": PIPELINE}, {"status": "failure"}, {"tag": "t3"},
                    {"text": "soak"}, {"skip": 2000}]  # fmt: skip
        with httpx.Client(base_url=self.base, timeout=30) as http:
            n = 0
            while time.time() < self.stop_at:
                params = {"limit": 50, **searches[n % len(searches)]}
                self.timed("search", lambda p=params: http.get("/results/works", params=p)
                           .raise_for_status())  # fmt: skip
                with self.lock:
                    id = self.ids[n % len(self.ids)] if self.ids else None
                if id:
                    self.timed("work page", lambda i=id: http.get(f"/buckets/work/{i}")
                               .raise_for_status())  # fmt: skip
                n += 1
                time.sleep(0.1)

    def dashboard(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while time.time() < self.stop_at:
                began = time.time()
                try:
                    with http.stream("GET", "/ui/events") as stream:
                        for _ in stream.iter_lines():
                            if time.time() - began > 60 or time.time() > self.stop_at:
                                break
                except httpx.HTTPError:
                    with self.lock:
                        self.errors["dashboard"] = self.errors.get("dashboard", 0) + 1
                    time.sleep(1)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": at(0.5), "p95": at(0.95), "p99": at(0.99),
            "max": round(ordered[-1], 1)}  # fmt: skip


def slope(samples: list[tuple[float, float]]) -> float:
    """MB per minute of the least-squares line through (seconds, MB) samples."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [mb for _, mb in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes not measured")
    parser.add_argument("--rate", type=float, default=200.0, help="works deposited a second")
    parser.add_argument("--clients", type=int, default=8,
                        help="depositing clients, and as many searching clients")
    parser.add_argument("--runners", type=int, default=2, help="runner processes")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the store and logs here")
    args = parser.parse_args()
    if args.minutes <= args.warmup:
        parser.error("--minutes must be longer than --warmup")

    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "memory-soak-")
        store = f"sqlite:///{(folder / 'soak.db').resolve()}"
        base, server = stack.enter_context(serve(store, folder / "server.log"))
        runners = [subprocess.Popen(
            [sys.executable, "-m", "workflow", "run", PIPELINE, "--prefetch", "50",
             "--concurrency", "2", "--spool", str(folder / f"spool-{n}")],
            env=clean_env(WORKFLOW_URL=base), stdout=subprocess.DEVNULL,
            stderr=open(folder / f"runner-{n}.log", "wb"))  # noqa: SIM115 - closed with it
            for n in range(args.runners)]  # fmt: skip
        began = time.time()
        load = Load(base, args.rate / args.clients, began + 60 * args.minutes)
        clients = [load.depositor, load.searcher] * args.clients + [load.dashboard] * 2
        threads = [threading.Thread(target=f, daemon=True) for f in clients]
        for thread in threads:
            thread.start()
        samples: list[tuple[float, float]] = []
        while time.time() < load.stop_at:
            elapsed = time.time() - began
            samples.append((elapsed, rss_mb(server.pid)))
            if len(samples) % 12 == 0:
                note(f"{elapsed / 60:.1f} min: server RSS {samples[-1][1]:.1f} MB, "
                     f"{len(load.latency.get('search', []))} searches")  # fmt: skip
            time.sleep(SAMPLE_S)
        for thread in threads:
            thread.join(timeout=90)
        with Client(base) as client:
            counts = client.counts().get(PIPELINE, {})
        for runner in runners:
            stop(runner)

    measured = [(t, mb) for t, mb in samples if t >= 60 * args.warmup]
    first, last = measured[0][1], measured[-1][1]
    rate = slope(measured)
    growth = (last - first) / first
    flat = rate < GOAL_SLOPE_MB_PER_MIN and abs(growth) < GOAL_GROWTH
    table = Table(title=f"Server memory over {args.minutes:g} min of mixed load "
                  f"(first {args.warmup:g} min not measured)")  # fmt: skip
    for column in ("measure", "value"):
        table.add_column(column)
    for name, value in (
        ("RSS at start of measurement", f"{first:.1f} MB"),
        ("RSS at end", f"{last:.1f} MB"),
        ("largest sample", f"{max(mb for _, mb in measured):.1f} MB"),
        ("slope", f"{rate:+.3f} MB/min"),
        ("change", f"{100 * growth:+.1f} %"),
        ("flat (goal)", "yes" if flat else "NO"),
        ("works finished", f"{sum(counts.get(s, 0) for s in ('success', 'failure')):,}"),
    ):
        table.add_row(name, value)
    percentiles = {kind: _percentiles(values) for kind, values in load.latency.items()}
    for kind, got in sorted(percentiles.items()):
        table.add_row(f"{kind}: n, p50, p95, p99, max ms, errors",
                      f"{got['n']:,}, {got['p50']}, {got['p95']}, {got['p99']}, {got['max']}, "
                      f"{load.errors.get(kind, 0)}")  # fmt: skip
    table.add_row("errors (goal: none)", str(sum(load.errors.values())))
    Console(width=120).print(table)
    print(json.dumps({
        "benchmark": "memory_soak", "minutes": args.minutes, "warmup_min": args.warmup,
        "rate": args.rate, "rss_start_mb": round(first, 1), "rss_end_mb": round(last, 1),
        "rss_max_mb": round(max(mb for _, mb in measured), 1),
        "slope_mb_per_min": round(rate, 3), "growth": round(growth, 4), "flat": flat,
        "samples": [(round(t, 1), round(mb, 1)) for t, mb in samples],
        "clients": args.clients, "runners": args.runners, "latency_ms": percentiles,
        "errors": load.errors, "counts": counts, "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
