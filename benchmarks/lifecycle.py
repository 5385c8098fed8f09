"""Throughput of the whole life of a work: deposit, withdraw, run, report, results.

For each ``--prefetch`` value a fresh SQLite file gets its own ``workflow serve`` (free
loopback port, default ``WORKFLOW_REAP_INTERVAL``). N no-op works (``noop_tasks.noop``,
one parameter) are deposited in batches of 1,000 through the HTTP client; then R
``workflow run PIPELINE noop_tasks.noop --burst --prefetch K --concurrency C`` processes
start at the same moment (each with its own spool directory, ``benchmarks/`` on
``PYTHONPATH``, report lines to a log file). The clock starts just before the first
runner is started, and stops when the results hold all N works, seen by polling the
store's per-status counts every 20 ms straight from the SQLite file (so that polling
costs the server nothing). ``works_per_s`` is N over that wall time, so it includes
the runners' start-up (imports, the forkserver and the first warm child); ``steady``
counts from the first result instead.

Afterwards every result is checked: N works, each ``success`` with exactly one attempt
in its history, which ended in success, and the bucket empty. The runners must exit 0.
CPU seconds of the server and of each runner's process tree (runner, forkserver,
children) are read from ``/proc`` during the run, as CPU milliseconds per work.

``--profile DIR`` also samples the server and the first runner (with its children)
with ``py-spy record`` and ``perf record`` from the moment a tenth of the works are done
(the steady stretch) to the last, and prints where their CPU goes (see ``profiles``).

Run: ``.venv/bin/python benchmarks/lifecycle.py`` (see ``--help``). Progress goes to
stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import profiles
from processes import CpuMeter, clean_env, machine, note, serve, stop, workdir
from rich.console import Console
from rich.table import Table

from workflow.client import Client
from workflow.store.sqlite import SqliteStore
from workflow.work import Work

PIPELINE = "bench-lifecycle"
FUNCTION = "noop_tasks.noop"
DEPOSIT_BATCH = 1000
POLL_S = 0.02


def deposit(base: str, works: int, pipeline: str = PIPELINE, function: str = FUNCTION,
            parameters: dict[str, Any] | None = None) -> list[str]:  # fmt: skip
    """Deposit ``works`` no-op works (parameters ``i`` and ``parameters``) through the
    HTTP client; return their ids."""
    ids: list[str] = []
    with Client(base, token="", timeout=120) as client:
        for start in range(0, works, DEPOSIT_BATCH):
            batch = [Work(pipeline=pipeline, function=function,
                          parameters={"i": i, **(parameters or {})})
                     for i in range(start, min(works, start + DEPOSIT_BATCH))]  # fmt: skip
            ids += client.deposit(batch)
    return ids


def finished(store: SqliteStore, pipeline: str) -> int:
    """How many works of ``pipeline`` the results hold (any status)."""
    return sum(n for p, _, n in store.results.tally() if p == pipeline)


def verify(store: SqliteStore, ids: list[str], pipeline: str) -> dict[str, Any]:
    """Check every result: all ids there, success, exactly one attempt, which succeeded.

    Returns:
        Works per runner, and the first claim time (server clock).

    Raises:
        RuntimeError: anything is off.
    """
    docs = store.results.find({"pipeline": pipeline})
    if sorted(d["id"] for d in docs) != sorted(ids):
        raise RuntimeError(f"the results hold {len(docs)} works, not the {len(ids)} deposited")
    left = [p for p, _, n in store.work.tally() if p == pipeline and n]
    if left:
        raise RuntimeError("works are left in the bucket")
    runners: Counter[str] = Counter()
    first_claim = float("inf")
    for doc in docs:
        attempts = [e for e in doc.get("history", []) if e.get("kind", "attempt") == "attempt"]
        if doc["status"] != "success" or len(attempts) != 1 or attempts[0]["outcome"] != "success":
            raise RuntimeError(f"work {doc['id']} is {doc['status']} with history "
                               f"{doc.get('history')}")  # fmt: skip
        runners[attempts[0].get("runner") or "?"] += 1
        first_claim = min(first_claim, attempts[0].get("claimed") or first_claim)
    return {"per_runner": sorted(runners.values(), reverse=True), "first_claim": first_claim}


def run_lifecycle(works: int, runners: int, prefetch: int | None, concurrency: int, folder: Path,
                  profile: Path | None = None, log_format: str = "text",
                  timeout: float = 1800.0) -> dict[str, Any]:  # fmt: skip
    """One measurement on a fresh store and server; returns its row (see ``table``).

    Raises:
        RuntimeError: a runner failed, the works were not all done in ``timeout``
            seconds, or the results are not what they should be.
    """
    name = f"p{label(prefetch)}-c{concurrency}-r{runners}"
    taken = 1
    while (folder / f"lifecycle-{name}.db").exists():  # a value measured again: a new store
        taken += 1
        name = f"p{label(prefetch)}-c{concurrency}-r{runners}-{taken}"
    path = folder / f"lifecycle-{name}.db"
    url = f"sqlite:///{path.resolve()}"
    with serve(url, folder / f"serve-{name}.log") as (base, server), ExitStack() as stack:
        began = time.perf_counter()
        ids = deposit(base, works)
        note(f"{name}: deposited {works:,} works in {time.perf_counter() - began:.1f} s")
        store = SqliteStore(url)
        stack.callback(store.close)
        meter = CpuMeter()
        meter.add(server.pid, "server")
        meter.start()
        env = clean_env()
        command = [sys.executable, "-m", "workflow", "run", PIPELINE, FUNCTION, "--burst",
                   *(["--prefetch", str(prefetch)] if prefetch else []),
                   "--concurrency", str(concurrency), "--url", base,
                   "--log-format", log_format]  # fmt: skip
        processes: list[subprocess.Popen] = []
        started = time.time()
        for i in range(runners):
            log = stack.enter_context(open(folder / f"runner-{name}-{i}.log", "wb"))
            spool = ["--spool", str(folder / f"spool-{name}-{i}")]
            processes.append(subprocess.Popen(command + spool, env=env, stdout=log,
                                              stderr=subprocess.STDOUT))  # fmt: skip
            stack.callback(stop, processes[-1])
        for process in processes:
            meter.add(process.pid, "runners")
        recordings: list[profiles.Recording] = []
        first_seen, done, last_sample, window, profiled = None, 0, 0.0, {}, 0
        while True:
            done = finished(store, PIPELINE)
            now = time.time()
            if done and first_seen is None:
                first_seen = (now, done)
            if profile is not None and not recordings and done >= max(1, works // 10):
                # Sample the steady stretch only: every runner has long started by now.
                profiled = done
                meter.sample()
                window = meter.totals()
                recordings = [
                    profiles.Recording(f"server-{name}", [server.pid], profile),
                    profiles.Recording(f"runner-{name}", meter.tree(processes[0].pid),
                                       profile),
                ]  # fmt: skip
            if done >= works:
                break
            if now - last_sample > 0.25:
                meter.sample()
                last_sample = now
            if all(p.poll() is not None for p in processes):
                raise RuntimeError(f"the runners exited with {[p.returncode for p in processes]}"
                                   f" after {done} of {works} works; see {folder}")  # fmt: skip
            if now - started > timeout:
                raise RuntimeError(f"only {done} of {works} works done in {timeout:.0f} s")
            time.sleep(POLL_S)
        ended = time.time()
        meter.sample()
        cpu = meter.totals()
        for recording in recordings:
            recording.finish()
        for process in processes:
            process.wait(timeout=120)
        exited = time.time()
        codes = [p.returncode for p in processes]
        if any(codes):
            raise RuntimeError(f"runner exit codes {codes}; see {folder}")
        checked = verify(store, ids, PIPELINE)
        wall = ended - started
        assert first_seen is not None
        row: dict[str, Any] = {
            "works": works, "runners": runners, "prefetch": prefetch,
            "concurrency": concurrency,
            "wall_s": round(wall, 3),
            "works_per_s": round(works / wall, 1),
            "steady_works_per_s": round((works - first_seen[1]) / max(ended - first_seen[0],
                                                                       1e-9), 1),
            "startup_s": round(first_seen[0] - started, 3),
            "first_claim_s": round(checked["first_claim"] - started, 3),
            "exit_s": round(exited - ended, 3),
            "server_cpu_ms_per_work": round(1000 * cpu["server"] / works, 3),
            "runner_cpu_ms_per_work": round(1000 * cpu["runners"] / works, 3),
            "runner_children_cpu_ms_per_work": round(1000 * cpu["runners children"] / works, 3),
            "per_runner": checked["per_runner"],
        }  # fmt: skip
        if recordings:
            stretch = max(1, works - profiled)
            steady = {k: v - window.get(k, 0.0) for k, v in cpu.items()}
            # One runner tree of R was sampled: charge it its share of the works.
            row["profile"] = {
                "server": recordings[0].summary(steady["server"], stretch),
                "runner": recordings[1].summary(steady["runners"] / runners, stretch / runners),
                "steady_cpu_ms_per_work": {k: round(1000 * v / stretch, 3)
                                           for k, v in steady.items()},
            }  # fmt: skip
        note(f"{name}: {row['works_per_s']:,} works/s over {wall:.1f} s")
        return row


def table(rows: list[dict[str, Any]], title: str = "lifecycle: deposit first, then runners"
          ) -> Table:  # fmt: skip
    """The measurements as a rich table."""
    out = Table(title=title)
    for column in ("works", "runners", "prefetch", "concurrency", "wall s", "works/s",
                   "steady works/s", "first result s", "server CPU ms/work",
                   "runner CPU ms/work", "of it children", "works per runner"):  # fmt: skip
        out.add_column(column, justify="right")
    for row in rows:
        out.add_row(
            f"{row['works']:,}", str(row["runners"]), label(row["prefetch"]),
            str(row["concurrency"]), f"{row['wall_s']:.2f}", f"{row['works_per_s']:,.1f}",
            f"{row['steady_works_per_s']:,.1f}", f"{row['startup_s']:.2f}",
            f"{row['server_cpu_ms_per_work']:.3f}", f"{row['runner_cpu_ms_per_work']:.3f}",
            f"{row['runner_children_cpu_ms_per_work']:.3f}",
            "/".join(str(n) for n in row["per_runner"]),
        )  # fmt: skip
    return out


def profile_tables(rows: list[dict[str, Any]]) -> list[Table]:
    """Where the CPU went, per measured mode and sampled process (see ``profiles``)."""
    views = (("kinds", "Python code by kind (py-spy)"), ("entry", "Python entry point (py-spy)"),
             ("innermost", "innermost Python function (py-spy)"))  # fmt: skip
    tables = []
    for row in rows:
        for side in ("server", "runner"):
            summary = row.get("profile", {}).get(side)
            if not summary:
                continue
            parts = [(summary, key, label) for key, label in views]
            if "native" in summary:
                parts += [(summary["native"], "kinds", "shared object (perf)"),
                          (summary["native"], "symbols", "native symbol (perf)")]  # fmt: skip
            for source, key, label in parts:
                out = Table(title=f"{side}, prefetch {row['prefetch']}: CPU by {label}; "
                            f"{summary['cpu_ms_per_work']:.3f} CPU ms/work in all")  # fmt: skip
                out.add_column(label)
                out.add_column("share", justify="right")
                out.add_column("CPU ms/work", justify="right")
                for item in source[key]:
                    out.add_row(item["name"], f"{100 * item['share']:.1f}%",
                                f"{item['ms_per_work']:.3f}")  # fmt: skip
                tables.append(out)
    return tables


def numbers(text: str, kind: Callable[[str], Any] = int) -> list[Any]:
    """``"1,50"`` -> ``[1, 50]`` (``kind`` converts each part)."""
    return [kind(part) for part in text.split(",") if part.strip()]


def prefetch_value(text: str) -> int | None:
    """A ``--prefetch`` value: a number, or ``auto`` (None: the runner chooses)."""
    return None if text.strip() == "auto" else int(text)


def label(prefetch: int | None) -> str:
    """How a prefetch value reads in names, tables and JSON keys."""
    return "auto" if prefetch is None else str(prefetch)


def main() -> None:
    """Parse the arguments, measure every prefetch value, print the table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--works", type=int, default=20000, help="works (default: %(default)s)")
    parser.add_argument("--runners", type=int, default=2,
                        help="runner processes (default: %(default)s)")
    parser.add_argument("--prefetch", default="auto,1,50,500",
                        help="comma-separated works per withdraw, one run each "
                             "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=1,
                        help="attempts at once per runner (default: %(default)s)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="the runners' report lines, written to a log file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the server and the first runner with py-spy into DIR")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the SQLite files, server and runner logs here and keep them")
    args = parser.parse_args()
    if args.works < 1 or args.runners < 1 or args.concurrency < 1:
        parser.error("--works, --runners and --concurrency must be at least 1")
    if args.profile is not None:
        profiles.py_spy()  # fail now, not after the first run
        args.profile.mkdir(parents=True, exist_ok=True)

    began = time.perf_counter()
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "lifecycle-")
        rows = [run_lifecycle(args.works, args.runners, prefetch, args.concurrency, folder,
                              args.profile, args.log_format)
                for prefetch in numbers(args.prefetch, prefetch_value)]  # fmt: skip
    runtime = time.perf_counter() - began

    console = Console(width=170)
    for extra in profile_tables(rows):
        console.print(extra)
    console.print(table(rows))
    print(f"total runtime {runtime:.0f} s")
    print(json.dumps({
        "benchmark": "lifecycle", "works": args.works, "runners": args.runners,
        "concurrency": args.concurrency,
        "works_per_s": {label(row["prefetch"]): row["works_per_s"] for row in rows},
        "results": rows, "runtime_s": round(runtime, 1), "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
