"""Withdraw latency with 10^3, 10^5 and 10^6 queued works, in-process and over HTTP.

For each size a fresh SQLite file is seeded once, then measured twice: in-process
(``Buckets.withdraw`` on a ``SqliteStore``) and over HTTP
(``Client.withdraw`` against a real ``workflow serve`` subprocess on a free loopback
port, which posts ``{"pipelines": [...], "limit": 1}`` to ``/buckets/withdraw``). The
works are spread over four pipelines and every withdraw names two of them, so the claim
merges two index walks. Each withdraw is timed alone with ``time.perf_counter()``;
after it, an untimed deposit puts one new work into the same pipeline, so the queue
holds exactly ``size`` works for every sample (2,000 samples would otherwise empty a
queue of 1,000). Warm-up withdraws come first and are not counted.

Seeding through the API would take too long at 10^6, so the first work is deposited
through the API and its stored document is the template for the rest: each copy gets
its own id, pipeline, parameters, priority (1 + i % 5) and creation, and all go in
through ``SqliteCollection.insert`` (the code path of a deposit) in batches, so the
tally triggers and the indexes see every row.

Goals: p99 under 5 ms in-process and under 20 ms over HTTP with 10^6 queued works.

Run: ``.venv/bin/python benchmarks/withdraw_latency.py`` (see ``--help``). Progress goes
to stderr; stdout gets a table and, as its last line, one JSON object. The default run
took 94 s on a 2-core, 24 GB machine (Python 3.11.7, SQLite 3.40.1), half of it seeding
the 10^6 file (48 s, 0.9 GB on disk); p99 was 0.8 ms in-process and 5.6 ms over HTTP
at 10^6.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from processes import add_mode_options, machine, serve, workdir
from rich.console import Console
from rich.table import Table

from workflow.buckets import Buckets
from workflow.client import Client
from workflow.store.sqlite import SqliteStore
from workflow.wire import Doc, Withdraw
from workflow.work import Work, new_id

PIPELINES = [f"bench-{n}" for n in range(4)]
#: What every measured withdraw asks for: two of the four pipelines.
WITHDRAW_FROM = PIPELINES[:2]
#: The withdraw every sample makes.
WANT = Withdraw(pipelines=WITHDRAW_FROM, limit=1)
#: p99 goals in milliseconds, with 10^6 queued works.
GOALS_MS = {"in-process": 5.0, "http": 20.0}
BATCH = 20_000


def new_work(i: int, creation: float, pipeline: str | None = None) -> Work:
    """The ``i``-th benchmark work."""
    return Work(
        pipeline=pipeline or PIPELINES[i % len(PIPELINES)],
        function="bench.task",
        parameters={"i": i},
        priority=1 + i % 5,
        creation=creation,
    )


def seed(url: str, size: int) -> None:
    """Fill the fresh store at ``url`` with ``size`` queued works, one a millisecond.

    Raises:
        RuntimeError: the store does not hold exactly what was seeded.
    """
    store = SqliteStore(url)
    try:
        oldest = time.time() - size * 1e-3
        first = Buckets(store).deposit([new_work(0, oldest)])[0]
        template = store.work.get(first)
        assert template is not None
        for start in range(1, size, BATCH):
            batch = []
            for i in range(start, min(size, start + BATCH)):
                doc = template.copy()  # shallow: insert serializes each copy at once
                doc.update(
                    id=new_id(),
                    pipeline=PIPELINES[i % len(PIPELINES)],
                    parameters={"i": i},
                    priority=1 + i % 5,
                    creation=oldest + i * 1e-3,
                )
                batch.append(doc)
            if any(store.work.insert(batch)):
                raise RuntimeError("an id clashed while seeding")
        tally = {(p, s): n for p, s, n in store.work.tally()}
        if sum(tally.values()) != size or {s for _, s in tally} != {"queued"}:
            raise RuntimeError(f"the tally does not match the seed: {tally}")
        for doc in store.work.find({"pipeline": PIPELINES[-1]}, limit=20):
            Work.model_validate(doc)  # every seeded document is a valid work
    finally:
        store.close()  # the last connection to close checkpoints the WAL away


def measure(
    withdraw: Callable[[], list[Doc]], deposit: Callable[[Work], object], samples: int, warmup: int
) -> list[float]:
    """Milliseconds of each of ``samples`` withdraws, after ``warmup`` untimed ones."""
    timings = []
    gc.collect()
    for n in range(warmup + samples):
        began = time.perf_counter()
        taken = withdraw()
        elapsed = time.perf_counter() - began
        if len(taken) != 1 or taken[0]["pipeline"] not in WITHDRAW_FROM:
            raise RuntimeError(f"withdraw returned {taken!r}")
        # Untimed: one new work in the same pipeline keeps the queue at its size.
        deposit(new_work(n, time.time(), taken[0]["pipeline"]))
        if n >= warmup:
            timings.append(elapsed * 1000)
    return timings



def summary(size: int, mode: str, timings: list[float], seed_s: float) -> dict[str, Any]:
    """One result row: p50, p99, mean and max in milliseconds."""
    return {
        "size": size,
        "mode": mode,
        "samples": len(timings),
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(statistics.quantiles(timings, n=100, method="inclusive")[98], 3),
        "mean_ms": round(statistics.fmean(timings), 3),
        "max_ms": round(max(timings), 3),
        "seed_s": round(seed_s, 1),
    }


def run_size(size: int, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seed one fresh file with ``size`` works and measure every requested mode on it."""
    path = folder / f"withdraw-{size}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path.resolve()}"
    note(f"{size:>9,} works: seeding ...")
    began = time.perf_counter()
    seed(url, size)
    seed_s = time.perf_counter() - began
    note(f"{size:>9,} works: seeded in {seed_s:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    rows = []
    if args.in_process:
        store = SqliteStore(url)
        buckets = Buckets(store)
        try:
            timings = measure(
                lambda: buckets.withdraw(WANT),
                lambda work: buckets.deposit([work]),
                args.samples,
                args.warmup,
            )
        finally:
            store.close()
        rows.append(summary(size, "in-process", timings, seed_s))
        note(f"{size:>9,} works: in-process p99 {rows[-1]['p99_ms']} ms")
    if args.http:
        with (
            serve(url, folder / f"serve-{size}.log") as (base, _),
            Client(base, token="", timeout=30) as client,
        ):
            timings = measure(
                lambda: client.withdraw(WANT),
                lambda work: client.deposit([work]),
                args.samples,
                args.warmup,
            )
        rows.append(summary(size, "http", timings, seed_s))
        note(f"{size:>9,} works: http p99 {rows[-1]['p99_ms']} ms")
    if args.keep is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return rows


def note(message: str) -> None:
    """Progress, on stderr so that stdout holds only the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]]) -> Table:
    """The results as a rich table, with the p99 goal of each mode."""
    out = Table(title="withdraw latency (ms)")
    for name in ("queued", "mode", "p50", "p99", "mean", "max", "seed s", "p99 goal"):
        out.add_column(name, justify="left" if name == "mode" else "right")
    for row in rows:
        goal = GOALS_MS[row["mode"]]
        verdict = "met" if row["p99_ms"] < goal else "MISSED"
        out.add_row(
            f"{row['size']:,}",
            row["mode"],
            f"{row['p50_ms']:.3f}",
            f"{row['p99_ms']:.3f}",
            f"{row['mean_ms']:.3f}",
            f"{row['max_ms']:.3f}",
            f"{row['seed_s']:.1f}",
            f"< {goal:g} {verdict}",
        )
    return out


def main() -> None:
    """Parse the arguments, run every size, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes",
        default="1000,100000,1000000",
        help="comma-separated numbers of queued works (default: %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=2000,
        help="timed withdraws per size and mode (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="untimed withdraws before them (default: %(default)s)",
    )
    add_mode_options(parser, "Buckets", "the SQLite files (and server logs)")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.samples < 2 or any(size < 1 for size in sizes):
        parser.error("--samples must be at least 2 and every size at least 1")

    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "withdraw-latency-")
        for size in sizes:
            rows += run_size(size, folder, args)
    runtime = time.perf_counter() - began

    Console(width=120).print(table(rows))
    print(f"total runtime {runtime:.0f} s")
    print(
        json.dumps(
            {
                "benchmark": "withdraw_latency",
                "results": rows,
                "goals_p99_ms": GOALS_MS,
                "runtime_s": round(runtime, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
