"""The client's own cost per HTTP call: httpx against urllib3, on a runner's calls.

A runner makes a request every few works, so what the client itself spends per request
(building it, parsing the reply) is CPU the runner's host does not give to the works.
This script starts one ``workflow serve`` on a fresh SQLite file (free loopback port),
deposits one work, and then times a runner's typical calls, each with the same small
JSON bodies encoded and decoded with orjson:

- ``withdraw``: ``POST /buckets/withdraw`` ``{"pipelines": [...], "limit": 1}`` on an
  empty pipeline (the reply is ``[]``);
- ``exchange``: ``POST /buckets/exchange`` with no outcomes and that withdraw;
- ``get``: ``GET /buckets/work/{id}`` of the deposited work.

through these stacks, each with one keep-alive connection:

- ``httpx``: ``httpx.Client`` with its default transport (httpcore, h11);
- ``urllib3 pool``: a urllib3 ``HTTPConnectionPool.urlopen`` with the path;
- ``urllib3 manager``: ``urllib3.PoolManager.urlopen`` with the whole URL (what picks
  the pool per URL and can stand in a ``ProxyManager``'s place);
- ``Client.call``: ``workflow.client.Client.call`` as this commit has it (timeouts,
  retry rules and error decoding included).

Per-call CPU is ``time.process_time()`` of this process over a round of ``--calls``
calls divided by the calls (the server runs in its own process, so its CPU is not
counted); per-call wall is ``time.perf_counter()`` over the same round. Stacks and calls
take turns, ``--rounds`` times, and the table shows the median round, so a neighbour's
burst of CPU on a shared machine spoils a round rather than a stack.

Run: ``.venv/bin/python benchmarks/http_stack.py`` (see ``--help``). Progress goes to
stderr; stdout gets a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import urllib3
from processes import machine, note, serve, workdir
from rich.console import Console
from rich.table import Table

from workflow.client import Client
from workflow.work import Work

PIPELINE = "bench-http-stack"
WITHDRAW = {"pipelines": [PIPELINE + "-empty"], "limit": 1}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: One HTTP call: (method, path, body or None) -> decoded reply.
Call = Callable[[str, str, Any], Any]


def httpx_stack(base: str, stack: ExitStack) -> Call:
    """Calls through ``httpx.Client`` with its default transport."""
    http = stack.enter_context(httpx.Client(base_url=base, timeout=10))

    def call(method: str, path: str, body: Any) -> Any:
        content = None if body is None else orjson.dumps(body)
        reply = http.request(method, path, content=content, headers=JSON_HEADERS)
        return orjson.loads(reply.content)

    return call


def pool_stack(base: str, stack: ExitStack) -> Call:
    """Calls through one urllib3 connection pool, given the path only."""
    manager = urllib3.PoolManager(maxsize=1, retries=False)
    stack.callback(manager.clear)
    pool = manager.connection_from_url(base)
    timeout = urllib3.Timeout(connect=10, read=10)

    def call(method: str, path: str, body: Any) -> Any:
        content = None if body is None else orjson.dumps(body)
        reply = pool.urlopen(method, path, body=content, headers=JSON_HEADERS, timeout=timeout,
                             retries=False, redirect=False, assert_same_host=False)  # fmt: skip
        return orjson.loads(reply.data)

    return call


def manager_stack(base: str, stack: ExitStack) -> Call:
    """Calls through ``urllib3.PoolManager.urlopen``, given the whole URL."""
    manager = urllib3.PoolManager(maxsize=1, retries=False,
                                  timeout=urllib3.Timeout(connect=10, read=10))  # fmt: skip
    stack.callback(manager.clear)

    def call(method: str, path: str, body: Any) -> Any:
        content = None if body is None else orjson.dumps(body)
        reply = manager.urlopen(method, base + path, body=content, headers=JSON_HEADERS,
                                redirect=False)  # fmt: skip
        return orjson.loads(reply.data)

    return call


def client_stack(base: str, stack: ExitStack) -> Call:
    """Calls through ``workflow.client.Client.call``."""
    client = stack.enter_context(Client(base, token="", timeout=10))

    def call(method: str, path: str, body: Any) -> Any:
        if body is None:
            return client.call(method, path, safe=True)
        return client.call(method, path, json=body)

    return call


STACKS: dict[str, Callable[[str, ExitStack], Call]] = {
    "httpx": httpx_stack, "urllib3 pool": pool_stack, "urllib3 manager": manager_stack,
    "Client.call": client_stack,
}  # fmt: skip


def requests(work_id: str) -> dict[str, tuple[str, str, Any]]:
    """The timed calls by name: (method, path, body)."""
    return {
        "withdraw": ("POST", "/buckets/withdraw", WITHDRAW),
        "exchange": ("POST", "/buckets/exchange", {"complete": [], "withdraw": WITHDRAW}),
        "get": ("GET", f"/buckets/work/{work_id}", None),
    }


def timed(call: Call, request: tuple[str, str, Any], calls: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call over ``calls`` calls of ``request``."""
    method, path, body = request
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call(method, path, body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return 1e6 * cpu / calls, 1e6 * wall / calls


def measure(base: str, work_id: str, calls: int, rounds: int, warmup: int
            ) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """Median per-call figures by stack and request over ``rounds`` rounds."""
    kinds = requests(work_id)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with ExitStack() as stack:
        made = {name: make(base, stack) for name, make in STACKS.items()}
        for call in made.values():
            for request in kinds.values():
                timed(call, request, warmup)
        names = list(made)
        for n in range(rounds):
            turn = names[n % len(names):] + names[: n % len(names)]  # each leads in turn
            for name in turn:
                for kind, request in kinds.items():
                    samples.setdefault((name, kind), []).append(timed(made[name], request, calls))
            note(f"round {n + 1}/{rounds} done")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (name, kind), values in samples.items():
        out.setdefault(name, {})[kind] = {
            "cpu_us": round(statistics.median(v[0] for v in values), 1),
            "wall_us": round(statistics.median(v[1] for v in values), 1),
        }
    return out


def table(results: dict[str, dict[str, dict[str, float]]]) -> Table:
    """Per-call CPU and wall µs, one row per stack and call."""
    out = Table(title="client cost per call (median round)")
    for name, justify in (("stack", "left"), ("call", "left"), ("CPU µs", "right"),
                          ("wall µs", "right")):  # fmt: skip
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, by_kind in results.items():
        for kind, figures in by_kind.items():
            out.add_row(name, kind, f"{figures['cpu_us']:.0f}", f"{figures['wall_us']:.0f}")
    return out


def main() -> None:
    """Parse the options, run the measurement, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per round (500)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per stack (7)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (100)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the store and log here")
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = workdir(stack, args.keep, "http-stack-")
        base, _ = stack.enter_context(serve(f"sqlite:///{folder / 'store.db'}",
                                            folder / "server.log"))  # fmt: skip
        with Client(base, token="") as client:
            (work_id,) = client.deposit([Work(pipeline=PIPELINE, function="builtins.dict")])
        note(f"server at {base}; {args.rounds} rounds of {args.calls} calls per stack")
        results = measure(base, work_id, args.calls, args.rounds, args.warmup)
    Console().print(table(results))
    print(json.dumps({"machine": machine(), "calls": args.calls, "rounds": args.rounds,
                      "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
