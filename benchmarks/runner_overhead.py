"""What the runner adds to each work: claim -> function start, function return -> ack.

For each ``--work-ms`` and ``--prefetch`` value a fresh SQLite file gets its own
``workflow serve``; N works are deposited, then one runner works them off with ``burst``,
``concurrency`` 1 and that prefetch. With 0 ms the works are ``noop_tasks.stamp`` (a
backlog of no-op works: the runner runs flat out, and outcomes wait for the delivery
before theirs, so *return -> ack* is mostly batching); otherwise ``noop_tasks.busy``,
which computes for that long (paced works: what the runner adds to each when it is not
the bottleneck). Both return ``{"entered": t0, "left": t1}``, their own ``time.time()``
at entry and exit. The runner is the real
``workflow.runner.Runner`` (what ``workflow run`` starts), run in this process so that
its HTTP calls can be timed: it gets a ``Client`` whose ``call`` notes when each reply
arrived, and a ``Reporter`` that notes when each outcome was handed to the outbox.
Nothing in the runner is changed. All clocks are ``time.time()`` on one host.

Per work, in milliseconds:

- **claim -> start**: ``results["entered"] - history[0]["claimed"]``. The claim time is
  the server's, written into the lease. With prefetch > 1 this includes waiting behind
  the earlier works of the same batch, which is not overhead; **claim -> start (own)**
  leaves it out: it counts from the later of the claim and the previous function's
  return (with concurrency 1 the runner cannot start a work before that).
- **return -> ack**: from ``results["left"]`` to the moment the runner had the server's
  reply to the completion request that carried the work (``POST /buckets/complete``;
  the server had committed the move to the results just before it replied). Split
  into *return -> outbox* (the child sends the outcome back, the attempt thread wakes
  and hands it on) and *outbox -> ack* (waiting for the delivery thread and for the
  request before, the journal, the HTTP request).
- **withdraw reply**: server claim -> the runner has the works (one request per batch).
- **overhead** = claim -> start (own) + return -> ack, per work; its median is the figure
  with the goal (under 2 ms with prefetch).
- **wall per work**: (last ack - first claim) / N, what a work costs end to end when
  deliveries overlap the next works; minus the function's own time.

For scale, the same server also times bare ``Client`` round trips from this process:
``complete()`` of one claimed work (``POST /buckets/work/{id}/complete``) and
``withdraw(limit=1)``.

Run: ``.venv/bin/python benchmarks/runner_overhead.py`` (see ``--help``). Progress goes to
stderr; stdout gets tables and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lifecycle import deposit, numbers
from processes import machine, note, serve, workdir
from rich.console import Console
from rich.table import Table

from workflow.client import Client
from workflow.runner import Runner, RunnerOptions
from workflow.runner.report import Reporter
from workflow.store.sqlite import SqliteStore
from workflow.wire import Outcome, Withdraw

PIPELINE = "bench-overhead"
FUNCTION = "noop_tasks.stamp"
#: What paced works run: they compute for their milliseconds, as real processing does.
PACED = "noop_tasks.busy"
GOAL_MS = 2.0
_COMPLETE_PATH = re.compile(r"/buckets/work/(?P<id>[^/]+)/complete$")


class TimedClient(Client):
    """A ``Client`` that notes when each reply arrived, per work id it carried."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.got: dict[str, float] = {}  # work id -> withdraw reply received
        self.acked: dict[str, float] = {}  # work id -> completion reply received
        self.batches: list[int] = []  # works per completion request
        self._lock = threading.Lock()

    def call(self, method: str, path: str, *, safe: bool = False, **kwargs: Any) -> Any:
        reply = super().call(method, path, safe=safe, **kwargs)
        now = time.time()
        body = kwargs.get("json")
        with self._lock:
            if path.endswith("/withdraw") and isinstance(reply, list):
                for work in reply:
                    self.got.setdefault(work["id"], now)
            elif "complete" in path:
                if match := _COMPLETE_PATH.search(path):
                    ids = [match["id"]]
                else:  # a batch: {"works": [{"id": ...}, ...]}
                    ids = [item["id"] for item in (body or {}).get("works", [])]
                self.batches.append(len(ids))
                for id in ids:
                    self.acked.setdefault(id, now)
        return reply


class TimedReporter(Reporter):
    """A ``Reporter`` that notes when each outcome was about to go to the outbox."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reported: dict[str, float] = {}

    def attempts(self, done: list[tuple[dict[str, Any], Outcome]]) -> None:
        now = time.time()
        for work, _ in done:
            self.reported[work["id"]] = now
        super().attempts(done)


def stats(values: list[float]) -> dict[str, float]:
    """Median, p90 and mean of milliseconds."""
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
            "mean_ms": round(statistics.fmean(ordered), 3), "n": len(ordered)}  # fmt: skip


def run_runner(base: str, prefetch: int, folder: Path, name: str, function: str
               ) -> tuple[TimedClient, TimedReporter]:  # fmt: skip
    """Work off the pipeline with one in-process runner (burst, concurrency 1)."""
    options = RunnerOptions(pipelines=[PIPELINE], function=function, burst=True,
                            prefetch=prefetch, concurrency=1,
                            spool=folder / f"spool-{name}")  # fmt: skip
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with open(folder / f"runner-{name}.log", "w") as log:
        client = TimedClient(base, token="", timeout=60)
        reporter = TimedReporter("text", log)
        try:
            code = Runner(client, options, reporter).run()
        finally:
            client.close()
            for signum, handler in handlers.items():  # the runner installs its own
                signal.signal(signum, handler)
    if code != 0:
        raise RuntimeError(f"the runner exited with {code}")
    return client, reporter


def decompose(docs: list[dict[str, Any]], client: TimedClient, reporter: TimedReporter
              ) -> dict[str, Any]:  # fmt: skip
    """Per-work intervals from the results, the client's and the reporter's notes."""
    rows = []
    for doc in docs:
        attempts = [e for e in doc["history"] if e.get("kind", "attempt") == "attempt"]
        if doc["status"] != "success" or len(attempts) != 1:
            raise RuntimeError(f"work {doc['id']} is {doc['status']}: {doc['history']}")
        id = doc["id"]
        if id not in client.got or id not in client.acked or id not in reporter.reported:
            raise RuntimeError(f"the runner's calls for {id} were not all seen")
        rows.append({"claimed": attempts[0]["claimed"], "got": client.got[id],
                     "entered": doc["results"]["entered"], "left": doc["results"]["left"],
                     "reported": reporter.reported[id], "acked": client.acked[id]})  # fmt: skip
    rows.sort(key=lambda r: r["entered"])
    parts: dict[str, list[float]] = {name: [] for name in (
        "withdraw reply", "claim -> start", "claim -> start (own)", "function",
        "return -> outbox", "outbox -> ack", "return -> ack", "overhead")}  # fmt: skip
    previous_left = 0.0
    for row in rows:
        own = row["entered"] - max(row["claimed"], previous_left)
        back = row["acked"] - row["left"]
        for name, seconds in (
            ("withdraw reply", row["got"] - row["claimed"]),
            ("claim -> start", row["entered"] - row["claimed"]),
            ("claim -> start (own)", own),
            ("function", row["left"] - row["entered"]),
            ("return -> outbox", row["reported"] - row["left"]),
            ("outbox -> ack", row["acked"] - row["reported"]),
            ("return -> ack", back),
            ("overhead", own + back),
        ):
            parts[name].append(1000 * seconds)
        previous_left = row["left"]
    out: dict[str, Any] = {name: stats(values) for name, values in parts.items()}
    wall = max(r["acked"] for r in rows) - min(r["claimed"] for r in rows)
    per_work = 1000 * wall / len(rows)
    out["wall per work"] = {"median_ms": round(per_work, 3), "p90_ms": None, "mean_ms": None,
                            "n": len(rows)}  # fmt: skip
    out["wall per work - function"] = {
        "median_ms": round(per_work - out["function"]["mean_ms"], 3), "p90_ms": None,
        "mean_ms": None, "n": len(rows)}  # fmt: skip
    return out


def bare_round_trips(base: str, count: int) -> dict[str, Any]:
    """``complete()`` and ``withdraw(limit=1)`` timed alone from this process."""
    pipeline = "bench-overhead-direct"
    deposit(base, 2 * count, pipeline, FUNCTION)
    completes, withdraws = [], []
    with Client(base, token="", timeout=60) as client:
        for _ in range(count):
            began = time.perf_counter()
            client.withdraw(Withdraw(pipelines=[pipeline], limit=1, lease=60, runner="bench"))
            withdraws.append(1000 * (time.perf_counter() - began))
        claimed = client.withdraw(Withdraw(pipelines=[pipeline], limit=count, lease=60,
                                           runner="bench"))  # fmt: skip
        for work in claimed:
            now = time.time()
            began = time.perf_counter()
            client.complete(Outcome(id=work["id"], attempt=work["attempt"], status="success",
                                    results={"entered": now}, started=now, stop=now))
            completes.append(1000 * (time.perf_counter() - began))
    return {"complete() alone": stats(completes), "withdraw(limit=1) alone": stats(withdraws)}


def measure(works: int, prefetch: int, work_ms: float, folder: Path, bare: int
            ) -> dict[str, Any]:  # fmt: skip
    """One fresh server and store: the runner's intervals, and bare round trips."""
    name = f"p{prefetch}-{work_ms:g}ms"
    path = folder / f"overhead-{name}.db"
    url = f"sqlite:///{path.resolve()}"
    with serve(url, folder / f"serve-{name}.log") as (base, _):
        function = PACED if work_ms else FUNCTION
        ids = deposit(base, works, PIPELINE, function, {"ms": work_ms} if work_ms else None)
        note(f"{name}: deposited {works:,} works; running them")
        began = time.perf_counter()
        client, reporter = run_runner(base, prefetch, folder, name, function)
        note(f"{name}: ran in {time.perf_counter() - began:.1f} s, "
             f"{len(client.batches)} completion requests")  # fmt: skip
        store = SqliteStore(url)
        try:
            docs = store.results.find({"pipeline": PIPELINE})
        finally:
            store.close()
        if sorted(d["id"] for d in docs) != sorted(ids):
            raise RuntimeError(f"{len(docs)} results for {len(ids)} works")
        parts = decompose(docs, client, reporter)
        if bare:
            parts.update(bare_round_trips(base, bare))
    batches = client.batches
    return {"prefetch": prefetch, "work_ms": work_ms, "label": f"prefetch {prefetch}, "
            f"{work_ms:g} ms works", "works": works, "parts": parts,
            "completion_requests": len(batches),
            "works_per_completion": round(sum(batches) / max(1, len(batches)), 2)}  # fmt: skip


def tables(results: list[dict[str, Any]]) -> list[Table]:
    """One table of intervals (prefetch values side by side) and one of the goal."""
    detail = Table(title="runner overhead per work (ms)")
    detail.add_column("interval")
    for result in results:
        for stat in ("median", "p90"):
            detail.add_column(f"{result['label']} {stat}", justify="right")
    for name in results[0]["parts"]:
        cells = []
        for result in results:
            part = result["parts"].get(name, {})
            cells += [f"{part[k]:.3f}" if part.get(k) is not None else ""
                      for k in ("median_ms", "p90_ms")]  # fmt: skip
        detail.add_row(name, *cells)
    goal = Table(title=f"median overhead per work, goal < {GOAL_MS:g} ms with prefetch")
    for column in ("runner", "claim -> start (own)", "return -> ack", "sum of medians",
                   "median of sums", "completion requests", "works per request", "goal"):
        goal.add_column(column, justify="right")
    for result in results:
        parts = result["parts"]
        start = parts["claim -> start (own)"]["median_ms"]
        back = parts["return -> ack"]["median_ms"]
        total = parts["overhead"]["median_ms"]
        verdict = "" if result["prefetch"] == 1 else ("met" if total < GOAL_MS else "MISSED")
        goal.add_row(result["label"], f"{start:.3f}", f"{back:.3f}",
                     f"{start + back:.3f}", f"{total:.3f}", str(result["completion_requests"]),
                     f"{result['works_per_completion']:.1f}", verdict)  # fmt: skip
    return [detail, goal]


def main() -> None:
    """Parse the arguments, measure every prefetch value, print the tables and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--works", type=int, default=1000,
                        help="works per measurement (default: %(default)s)")
    parser.add_argument("--prefetch", default="1,50",
                        help="comma-separated works per withdraw (default: %(default)s)")
    parser.add_argument("--work-ms", default="0,5",
                        help="comma-separated milliseconds each work computes; 0 gives a "
                             "backlog of no-op works (default: %(default)s)")  # fmt: skip
    parser.add_argument("--bare", type=int, default=500,
                        help="bare complete() and withdraw() round trips; 0 skips them "
                             "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the SQLite files and logs here and keep them")
    args = parser.parse_args()
    if args.works < 2:
        parser.error("--works must be at least 2")

    began = time.perf_counter()
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "overhead-")
        runs = [(ms, prefetch) for ms in numbers(args.work_ms, float)
                for prefetch in numbers(args.prefetch)]  # fmt: skip
        results = [measure(args.works, prefetch, ms, folder, args.bare if n == 0 else 0)
                   for n, (ms, prefetch) in enumerate(runs)]  # fmt: skip
    runtime = time.perf_counter() - began

    console = Console(width=170)
    for out in tables(results):
        console.print(out)
    print(f"total runtime {runtime:.0f} s")
    print(json.dumps({
        "benchmark": "runner_overhead", "works": args.works,
        "overhead_median_ms": {f"p{r['prefetch']}/{r['work_ms']:g}ms":
                               r["parts"]["overhead"]["median_ms"] for r in results},
        "goal_ms": GOAL_MS, "results": results, "runtime_s": round(runtime, 1),
        "machine": machine(),
    }))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
