"""Dispatch latency next to Celery 5 (Redis broker and result backend): how soon a work
deposited into a quiet system starts, and how soon its submitter sees the result.

Ours: one ``workflow serve`` on a fresh SQLite file and one ``workflow run`` started
with no flags but the function (``noop_tasks.stamp``, which returns when it was
entered), idle for ``--idle`` seconds before the first sample. Then ``--samples`` times,
``--gap`` seconds apart (the runner is idle again by then): deposit one work
(``Client.deposit``), then ``Client.wait`` for it. *Idle pickup* is from just before
the deposit to the function's start (its ``entered``); *result seen* is from just before
the deposit to ``wait`` returning. A 3-node graph of no-op tasks, deposited the same way
to a second runner started with no flags at all, gives *graph result seen*. Meanwhile a
third runner with no flags sits idle at a server of its own that logs every request it
answers: *idle requests* counts what that runner sent after its start-up.

Celery: ``redis-server`` and a prefork worker (``--concurrency 1``, ``task_acks_late``),
idle as long, then the same samples from a client in the Celery virtualenv:
``stamp.delay()`` to the task's start, and to ``AsyncResult.get()`` returning.

Both run on this machine, one after the other, over loopback; clocks are one machine's.
It installs what ``compare_celery.py`` installs when missing (``redis-server``,
``.venv-celery/``).

Goals: idle pickup p50 <= 5 ms and p99 <= 25 ms, and no slower than Celery's p50;
result seen p50 <= 15 ms; graph result seen p50 <= 100 ms; an idle runner sends at most
one request per 20 s.

Run: ``.venv/bin/python benchmarks/dispatch_latency.py`` (see ``--help``). Progress goes
to stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from compare_celery import celery_app, ensure_celery, ensure_redis, start_redis
from processes import clean_env, machine, note, serve, stop, workdir
from rich.console import Console
from rich.table import Table

from workflow.client import Client
from workflow.work import Work

PIPELINE = "bench-dispatch"
GRAPHS = "bench-dispatch-graph"
FUNCTION = "noop_tasks.stamp"
#: Three no-op tasks in a row, in the Ewoks format.
GRAPH = {"graph": {"id": "three-noops"},
         "nodes": [{"id": n, "task_type": "method", "task_identifier": "noop_tasks.noop"}
                   for n in "abc"],
         "links": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}]}  # fmt: skip
#: (figure, p50 goal ms, p99 goal ms); None where there is none.
GOALS = {"idle pickup": (5.0, 25.0), "result seen": (15.0, None),
         "graph result seen": (100.0, None)}  # fmt: skip

CELERY = '''import json
import sys
import time


@app.task(name="stamp")
def stamp():
    return time.time()


if __name__ == "__main__":
    samples, gap = int(sys.argv[1]), float(sys.argv[2])
    stamp.delay().get(timeout=60)  # the worker is up (untimed)
    time.sleep(float(sys.argv[3]))  # idle
    rows = []
    for _ in range(samples):
        time.sleep(gap)
        sent = time.time()
        entered = stamp.delay().get(timeout=60)
        rows.append([entered - sent, time.time() - sent])
    print(json.dumps(rows), flush=True)
'''


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p99 (and the max) in milliseconds."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * p99, 2), "max_ms": round(1000 * ordered[-1], 2),
            "n": len(ordered)}  # fmt: skip


def ours(samples: int, graphs: int, gap: float, idle: float, folder: Path) -> dict[str, Any]:
    """Idle pickup, result seen, and graph result seen, on a runner with no flags; and
    the requests an idle runner sends (``idle requests``)."""
    url = f"sqlite:///{folder / 'dispatch.db'}"
    with ExitStack() as stack:
        base, _ = stack.enter_context(serve(url, folder / "serve.log"))
        idle_count = stack.enter_context(idle_requests(folder, idle))
        env = clean_env(WORKFLOW_URL=base, XDG_DATA_HOME=str(folder / "xdg"))
        for name, args in (("runner", [PIPELINE, FUNCTION]), ("graph-runner", [GRAPHS])):
            log = stack.enter_context(open(folder / f"{name}.log", "wb"))
            runner = subprocess.Popen([sys.executable, "-m", "workflow", "run", *args],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            stack.callback(stop, runner, 30)
        client = stack.enter_context(Client(base, timeout=30))
        client.wait(client.deposit([Work(pipeline=PIPELINE)]), timeout=60)  # warm, untimed
        client.wait(client.deposit([Work(pipeline=GRAPHS, graph=GRAPH)]), timeout=60)
        note(f"workflow: runners up; idle for {idle:g} s")
        time.sleep(idle)
        pickup, seen = [], []
        for _ in range(samples):
            time.sleep(gap)
            sent = time.time()
            (done,) = client.wait(client.deposit([Work(pipeline=PIPELINE)]), timeout=60)
            seen.append(time.time() - sent)
            if done["status"] != "success":
                raise RuntimeError(f"a work ended {done['status']}: {done}")
            pickup.append(done["results"]["entered"] - sent)
        graph_seen = []
        for _ in range(graphs):
            time.sleep(gap)
            sent = time.time()
            (done,) = client.wait(client.deposit([Work(pipeline=GRAPHS, graph=GRAPH)]),
                                  timeout=60)  # fmt: skip
            graph_seen.append(time.time() - sent)
            if done["status"] != "success":
                raise RuntimeError(f"a graph work ended {done['status']}: {done}")
        idle_figures = idle_count()
    return {"idle pickup": percentiles(pickup), "result seen": percentiles(seen),
            "graph result seen": percentiles(graph_seen),
            "idle requests": idle_figures}  # fmt: skip


@contextmanager
def idle_requests(folder: Path, idle: float) -> Iterator[Callable[[], dict[str, Any]]]:
    """A second server, logging every request it answers, and a runner with no flags
    idle at it: yields a function that counts the requests the runner sent in the
    ``idle`` seconds after its start-up (its first withdraw)."""
    log_path = folder / "idle-serve.log"
    url = f"sqlite:///{folder / 'idle.db'}"
    with serve(url, log_path, extra=("--log-level", "debug")) as (base, _), \
            open(folder / "idle-runner.log", "wb") as log:  # fmt: skip
        runner = subprocess.Popen([sys.executable, "-m", "workflow", "run", PIPELINE, FUNCTION],
                                  env=clean_env(WORKFLOW_URL=base,
                                                XDG_DATA_HOME=str(folder / "idle-xdg")),
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            time.sleep(2)  # start-up: its version check and first withdraw
            start, began = log_path.stat().st_size, time.monotonic()

            def count() -> dict[str, Any]:
                time.sleep(max(0.0, idle - (time.monotonic() - began)))
                window = time.monotonic() - began
                with open(log_path, "rb") as text:
                    text.seek(start)
                    lines = [line for line in text.read().decode(errors="replace").splitlines()
                             if '"GET /' in line or '"POST /' in line]  # fmt: skip
                return {"requests": len(lines), "window_s": round(window, 1),
                        "per_20_s": round(20 * len(lines) / window, 2)}  # fmt: skip

            yield count
        finally:
            stop(runner, 30)


def celery(samples: int, gap: float, idle: float, folder: Path) -> dict[str, Any]:
    """The same samples through Celery and Redis."""
    python, version = ensure_celery()
    with ExitStack() as stack:
        server, port = start_redis(ensure_redis(), folder)
        stack.callback(stop, server)
        (folder / "bench_dispatch.py").write_text(celery_app(
            "Celery side of benchmarks/dispatch_latency.py (written by it).",
            "bench_dispatch", "dispatch", port, CELERY))
        env = clean_env(PYTHONPATH=str(folder))
        log = stack.enter_context(open(folder / "celery-worker.log", "wb"))
        worker = subprocess.Popen(
            [str(python), "-m", "celery", "-A", "bench_dispatch", "worker", "--concurrency",
             "1", "--pool", "prefork", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-Q", "dispatch", "--loglevel", "WARNING"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        stack.callback(stop, worker, 30)
        note(f"celery {version}: worker up; idle for {idle:g} s")
        run = subprocess.run([str(python), str(folder / "bench_dispatch.py"), str(samples),
                              str(gap), str(idle)], env=env, cwd=folder, capture_output=True,
                             text=True, timeout=idle + samples * (gap + 60))  # fmt: skip
        if run.returncode != 0:
            raise RuntimeError(f"the celery client failed: {run.stderr.strip()[-2000:]}")
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    return {"idle pickup": percentiles([r[0] for r in rows]),
            "result seen": percentiles([r[1] for r in rows]), "version": version}  # fmt: skip


def verdict(name: str, figures: dict[str, float], celery_p50: float | None) -> str:
    """Whether our ``figures`` meet the goals of ``name``."""
    p50_goal, p99_goal = GOALS[name]
    parts = []
    if p50_goal is not None:
        parts.append(f"p50 <= {p50_goal:g} {'met' if figures['p50_ms'] <= p50_goal else 'MISSED'}")
    if p99_goal is not None:
        parts.append(f"p99 <= {p99_goal:g} {'met' if figures['p99_ms'] <= p99_goal else 'MISSED'}")
    if celery_p50 is not None and name == "idle pickup":
        parts.append(f"<= Celery {'met' if figures['p50_ms'] <= celery_p50 else 'MISSED'}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=200, help="works (default: %(default)s)")
    parser.add_argument("--graphs", type=int, default=200,
                        help="graph works (default: %(default)s)")
    parser.add_argument("--gap", type=float, default=0.1,
                        help="seconds between samples (default: %(default)s)")
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds idle before the first sample (default: %(default)s)")
    parser.add_argument("--no-celery", dest="celery", action="store_false",
                        help="leave Celery out")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep files and logs in DIR")
    args = parser.parse_args()
    began = time.time()
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "dispatch-")
        (folder / "ours").mkdir(exist_ok=True)
        mine = ours(args.samples, args.graphs, args.gap, args.idle, folder / "ours")
        theirs = None
        if args.celery:
            (folder / "celery").mkdir(exist_ok=True)
            theirs = celery(args.samples, args.gap, args.idle, folder / "celery")
    table = Table(title="dispatch latency: deposit into a quiet system")
    for column in ("figure", "system", "n", "p50 ms", "p99 ms", "max ms", "ratio p50",
                   "goal"):  # fmt: skip
        table.add_column(column, justify="right" if column in ("n", "p50 ms", "p99 ms",
                                                               "max ms", "ratio p50") else "left")
    rows = []
    for name in GOALS:
        celery_figures = (theirs or {}).get(name)
        celery_p50 = celery_figures["p50_ms"] if celery_figures else None
        figures = mine[name]
        ratio = round(celery_p50 / figures["p50_ms"], 2) if celery_p50 else None
        goal = verdict(name, figures, celery_p50)
        rows.append({"figure": name, "system": "workflow", **figures,
                     "speedup_vs_celery_p50": ratio, "goal": goal})  # fmt: skip
        table.add_row(name, "workflow", str(figures["n"]), f"{figures['p50_ms']:.2f}",
                      f"{figures['p99_ms']:.2f}", f"{figures['max_ms']:.2f}",
                      f"{ratio:.2f}x" if ratio else "", goal)  # fmt: skip
        if celery_figures:
            rows.append({"figure": name, "system": "celery", **celery_figures})
            table.add_row(name, "celery", str(celery_figures["n"]),
                          f"{celery_figures['p50_ms']:.2f}", f"{celery_figures['p99_ms']:.2f}",
                          f"{celery_figures['max_ms']:.2f}", "1.00x", "")  # fmt: skip
    quiet = mine["idle requests"]
    quiet_goal = f"<= 1 per 20 s {'met' if quiet['per_20_s'] <= 1 else 'MISSED'}"
    console = Console(width=160)
    console.print(table)
    console.print(f"idle runner: {quiet['requests']} requests in {quiet['window_s']:g} s "
                  f"({quiet['per_20_s']:g} per 20 s; {quiet_goal})")  # fmt: skip
    console.print(f"total runtime {time.time() - began:.0f} s"
                  + (f"; Celery {theirs['version']}" if theirs else ""))  # fmt: skip
    print(json.dumps({"benchmark": "dispatch_latency", "samples": args.samples,
                      "graphs": args.graphs, "gap_s": args.gap, "idle_s": args.idle,
                      "results": rows, "idle_requests": {**quiet, "goal": quiet_goal},
                      "runtime_s": round(time.time() - began, 1),
                      "machine": machine()}))  # fmt: skip


if __name__ == "__main__":
    main()
