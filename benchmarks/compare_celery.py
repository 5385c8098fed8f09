"""Throughput next to Celery 5 (Redis broker and result backend) on the same no-op work.

Celery: ``redis-server`` on a free loopback port (``--save "" --appendonly no``, stopped
at the end), a tasks module written to a temporary directory (one ``noop(**kwargs)``
task, broker ``redis://.../0``, result backend ``redis://.../1``, ``task_acks_late=True``,
``worker_prefetch_multiplier`` left at its default of 4, queue ``bench``). N tasks are
enqueued first (``apply_async`` with one keyword argument, from a client process of the
Celery virtualenv); then the clock starts and ``celery -A ... worker --concurrency W
--pool prefork --without-gossip --without-mingle --without-heartbeat -Q bench
--loglevel WARNING`` starts; the clock stops when the result backend holds N results
(its key count polled every 20 ms), and every result must be ``SUCCESS``.

Ours: ``lifecycle.run_lifecycle`` with the same N and W runner processes (concurrency
1 each), once per ``--prefetch`` value (``auto``: no ``--prefetch`` flag, the runner
chooses; deposit first, then start the runners; the
clock runs from starting them until the results hold N works). Both sides thus count
their workers' start-up; ``steady`` counts from the first result instead.

What it installs when missing: ``redis-server`` with ``apt-get install -y redis-server``
(``apt-get update`` first if that fails; needs root), and ``.venv-celery/`` at the
project root with ``celery[redis]`` 5 (``python3 -m venv`` and pip).

Goals (ours / Celery, ``works_per_s``): at least 5x with prefetch and with a runner
started with no flags now; later at least 10x with prefetch and 2x with one work per
request.

Run: ``.venv/bin/python benchmarks/compare_celery.py`` (see ``--help``). Progress goes to
stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lifecycle import label, numbers, prefetch_value, run_lifecycle
from processes import BENCHMARKS, CpuMeter, clean_env, free_port, machine, note, stop, workdir
from rich.console import Console
from rich.table import Table

CELERY_VENV = BENCHMARKS.parent / ".venv-celery"
#: Least ratio ours / Celery: (now, later) per mode; None where no goal is set.
GOALS = {"prefetch": (5.0, 10.0), "one per request": (None, 2.0)}

#: A Celery app on the throwaway Redis (``{port}``), queue ``{queue}``, acks late; the
#: start of each generated Celery module (``celery_app``).
APP = '''from celery import Celery

app = Celery("{name}", broker="redis://127.0.0.1:{port}/0",
             backend="redis://127.0.0.1:{port}/1")
app.conf.update(task_acks_late=True, task_default_queue="{queue}",
                broker_connection_retry_on_startup=True)
'''


def celery_app(doc: str, name: str, queue: str, port: int, rest: str) -> str:
    """A generated Celery module: its docstring, the app (``APP``), then ``rest``."""
    return f'"""{doc}"""\n' + APP.format(name=name, port=port, queue=queue) + rest


TASKS = '''

@app.task(name="noop")
def noop(**kwargs):
    return None
'''

CLIENT = '''"""Enqueue the tasks, or wait for their results (written by compare_celery.py)."""
import json
import sys
import time
from collections import Counter

from bench_celery_tasks import app, noop


def enqueue(works, ids_path):
    began = time.time()
    with app.producer_or_acquire() as producer:
        ids = [noop.apply_async(kwargs={{"i": i}}, producer=producer).id
               for i in range(works)]
    with open(ids_path, "w") as out:
        json.dump(ids, out)
    print(json.dumps({{"enqueue_s": time.time() - began}}), flush=True)


def wait(works, ids_path, timeout):
    client = app.backend.client  # redis-py on the result database
    client.ping()
    print("ready", flush=True)
    began, first = time.time(), None
    while True:
        count, now = client.dbsize(), time.time()
        if count and first is None:
            first = (now, count)
        if count >= works:
            break
        if now - began > timeout:
            sys.exit(f"only {{count}} of {{works}} results after {{timeout}} s")
        time.sleep({poll})
    with open(ids_path) as src:
        ids = json.load(src)
    statuses = Counter()
    for start in range(0, len(ids), 1000):
        keys = [app.backend.get_key_for_task(i) for i in ids[start:start + 1000]]
        for raw in client.mget(keys):
            statuses[json.loads(raw)["status"] if raw else "missing"] += 1
    print(json.dumps({{"first": first[0], "first_count": first[1], "done": now,
                      "statuses": statuses}}), flush=True)


if __name__ == "__main__":
    verb, works, ids_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if verb == "enqueue":
        enqueue(works, ids_path)
    else:
        wait(works, ids_path, float(sys.argv[4]))
'''


def ensure_redis() -> str:
    """The ``redis-server`` executable, installed with apt-get when it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    note("installing redis-server with apt-get ...")
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is still not on PATH after apt-get install")
    return found


def ensure_celery(venv: Path = CELERY_VENV) -> tuple[Path, str]:
    """The Python of a virtualenv with Celery 5 and redis-py, and Celery's version."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import celery, redis; print(celery.__version__)"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        note(f"installing celery[redis] into {venv} ...")
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "celery[redis]>=5,<6"], check=True)
    version = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    if not version.startswith("5."):
        raise RuntimeError(f"{venv} has Celery {version}, not 5")
    return python, version


def start_redis(executable: str, folder: Path) -> tuple[subprocess.Popen, int]:
    """A throwaway ``redis-server`` on a free loopback port, no persistence."""
    port = free_port()
    log = open(folder / "redis.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(folder)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)


def run_celery(works: int, workers: int, folder: Path, python: Path, redis: str,
               timeout: float = 1800.0) -> dict[str, Any]:  # fmt: skip
    """Enqueue ``works`` no-op tasks, then time a prefork worker working them off."""
    with ExitStack() as stack:
        server, port = start_redis(redis, folder)
        stack.callback(stop, server)
        (folder / "bench_celery_tasks.py").write_text(celery_app(
            "Celery side of benchmarks/compare_celery.py (written by it).",
            "bench_celery_tasks", "bench", port, TASKS))
        (folder / "bench_celery_client.py").write_text(CLIENT.format(poll=0.02))
        env = clean_env(PYTHONPATH=str(folder))
        client = [str(python), str(folder / "bench_celery_client.py")]
        ids = str(folder / "celery-ids.json")
        enqueued = subprocess.run([*client, "enqueue", str(works), ids], env=env, cwd=folder,
                                  capture_output=True, text=True)  # fmt: skip
        if enqueued.returncode != 0:
            raise RuntimeError(f"enqueueing failed: {enqueued.stderr.strip()[-2000:]}")
        note(f"celery: enqueued {works:,} tasks in "
             f"{json.loads(enqueued.stdout)['enqueue_s']:.1f} s")  # fmt: skip
        waiter = subprocess.Popen([*client, "wait", str(works), ids, str(timeout)], env=env,
                                  cwd=folder, stdout=subprocess.PIPE, text=True)  # fmt: skip
        stack.callback(stop, waiter)
        assert waiter.stdout is not None
        if waiter.stdout.readline().strip() != "ready":
            raise RuntimeError("the result waiter could not reach redis")
        meter = CpuMeter()
        meter.add(server.pid, "redis")
        meter.start()
        log = stack.enter_context(open(folder / "celery-worker.log", "wb"))
        started = time.time()
        worker = subprocess.Popen(
            [str(python), "-m", "celery", "-A", "bench_celery_tasks", "worker",
             "--concurrency", str(workers), "--pool", "prefork", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-Q", "bench", "--loglevel", "WARNING"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        stack.callback(stop, worker, 30)
        meter.add(worker.pid, "worker")
        while waiter.poll() is None:
            meter.sample()
            if worker.poll() is not None:
                raise RuntimeError(f"the celery worker exited with {worker.returncode}; "
                                   f"see {folder / 'celery-worker.log'}")  # fmt: skip
            time.sleep(0.25)
        meter.sample()
        cpu = meter.totals()
        if waiter.returncode != 0:
            raise RuntimeError(f"waiting for the results failed ({waiter.returncode})")
        outcome = json.loads(waiter.stdout.read().strip().splitlines()[-1])
        if outcome["statuses"] != {"SUCCESS": works}:
            raise RuntimeError(f"celery results: {outcome['statuses']}")
    wall = outcome["done"] - started
    row = {"system": "celery", "mode": "prefork, acks late",
           "works": works, "processes": workers, "wall_s": round(wall, 3),
           "works_per_s": round(works / wall, 1),
           "steady_works_per_s": round((works - outcome["first_count"])
                                       / max(outcome["done"] - outcome["first"], 1e-9), 1),
           "startup_s": round(outcome["first"] - started, 3),
           "worker_cpu_ms_per_work": round(1000 * cpu["worker"] / works, 3),
           "broker_cpu_ms_per_work": round(1000 * cpu["redis"] / works, 3)}  # fmt: skip
    note(f"celery: {row['works_per_s']:,} works/s over {wall:.1f} s")
    return row


def ours(works: int, workers: int, prefetch: int | None, folder: Path) -> dict[str, Any]:
    """The lifecycle measurement as a row of this comparison (``prefetch`` None: the
    runner started with no flags chooses)."""
    row = run_lifecycle(works, workers, prefetch, 1, folder)
    mode = ("no flags (runner chooses)" if prefetch is None else
            "one work per request" if prefetch == 1 else f"prefetch {prefetch}")  # fmt: skip
    return {"system": "workflow", "mode": mode, "prefetch": prefetch, "works": works,
            "processes": workers, "wall_s": row["wall_s"], "works_per_s": row["works_per_s"],
            "steady_works_per_s": row["steady_works_per_s"], "startup_s": row["startup_s"],
            "worker_cpu_ms_per_work": row["runner_cpu_ms_per_work"],
            "broker_cpu_ms_per_work": row["server_cpu_ms_per_work"]}  # fmt: skip


def goal(prefetch: int | None, ratio: float) -> str:
    """The goal of this mode and whether ``ratio`` meets it."""
    now, later = GOALS["one per request" if prefetch == 1 else "prefetch"]
    parts = []
    if now is not None:
        parts.append(f">= {now:g}x {'met' if ratio >= now else 'MISSED'}")
    if later is not None:
        parts.append(f"later >= {later:g}x {'met' if ratio >= later else 'missed'}")
    return "; ".join(parts)


def table(rows: list[dict[str, Any]], celery: dict[str, Any]) -> Table:
    """Both systems side by side, with the ratio of ours to Celery."""
    out = Table(title=f"{celery['works']:,} no-op works, {celery['processes']} worker "
                "processes, queue filled first")  # fmt: skip
    for column in ("system", "mode", "wall s", "works/s", "steady works/s", "first result s",
                   "worker CPU ms/work", "server CPU ms/work", "ratio", "steady ratio", "goal"):
        out.add_column(column, justify="left" if column in ("system", "mode", "goal")
                       else "right")  # fmt: skip
    for row in rows:
        mine = row["system"] == "workflow"
        ratio = row["works_per_s"] / celery["works_per_s"]
        steady = row["steady_works_per_s"] / celery["steady_works_per_s"]
        out.add_row(
            row["system"], row["mode"], f"{row['wall_s']:.2f}", f"{row['works_per_s']:,.1f}",
            f"{row['steady_works_per_s']:,.1f}", f"{row['startup_s']:.2f}",
            f"{row['worker_cpu_ms_per_work']:.3f}", f"{row['broker_cpu_ms_per_work']:.3f}",
            f"{ratio:.2f}x", f"{steady:.2f}x", goal(row["prefetch"], ratio) if mine else "",
        )  # fmt: skip
    return out


def main() -> None:
    """Install what is missing, measure Celery and ours, print the table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--works", type=int, default=20000, help="works (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="Celery worker processes and our runners (default: %(default)s)")
    parser.add_argument("--prefetch", default="auto,1,50,500",
                        help="our works per withdraw, one run each (default: %(default)s)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the stores, modules and logs here and keep them")
    args = parser.parse_args()
    if args.works < 1 or args.workers < 1:
        parser.error("--works and --workers must be at least 1")

    began = time.perf_counter()
    redis = ensure_redis()
    python, version = ensure_celery()
    redis_version = subprocess.run([redis, "--version"], capture_output=True,
                                   text=True).stdout.split(" v=")[-1].split()[0]  # fmt: skip
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "celery-")
        celery = run_celery(args.works, args.workers, folder, python, redis)
        celery["prefetch"] = None
        rows = [ours(args.works, args.workers, prefetch, folder)
                for prefetch in numbers(args.prefetch, prefetch_value)]  # fmt: skip
    runtime = time.perf_counter() - began

    Console(width=180).print(table([celery, *rows], celery))
    print(f"total runtime {runtime:.0f} s; Celery {version}, Redis {redis_version}")
    ratios = {label(r["prefetch"]): round(r["works_per_s"] / celery["works_per_s"], 3)
              for r in rows}  # fmt: skip
    print(json.dumps({
        "benchmark": "compare_celery", "works": args.works, "workers": args.workers,
        "celery_works_per_s": celery["works_per_s"],
        "ours_works_per_s": {label(r["prefetch"]): r["works_per_s"] for r in rows},
        "ratio": ratios,
        "steady_ratio": {label(r["prefetch"]): round(r["steady_works_per_s"]
                                                   / celery["steady_works_per_s"], 3)
                         for r in rows},
        "goals": {"prefetch_min_ratio": GOALS["prefetch"][0],
                  "later_prefetch_min_ratio": GOALS["prefetch"][1],
                  "later_one_per_request_min_ratio": GOALS["one per request"][1]},
        "results": [celery, *rows], "celery": version, "redis": redis_version,
        "runtime_s": round(runtime, 1), "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
