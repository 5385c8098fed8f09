"""Fault tier: the server's wall clock jumps two hours forward, then back, while a runner
works. A small ``LD_PRELOAD`` library (built here with the system's C compiler) shifts
``clock_gettime(CLOCK_REALTIME)`` of the server process by the seconds in a file, as an
NTP step would; its monotonic clock is untouched."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fleet import assert_exactly_once, runners, wait_for, write_tasks
from harness import Server

pytestmark = pytest.mark.slow

SHIFT = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!real_clock_gettime) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real_clock_gettime(id, ts);
    const char *path = getenv("CLOCK_SHIFT_FILE");
    if (rc == 0 && path && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        FILE *f = fopen(path, "r");
        long shift = 0;
        if (f) {
            if (fscanf(f, "%ld", &shift) != 1) shift = 0;
            fclose(f);
        }
        ts->tv_sec += shift;
    }
    return rc;
}
"""


def _shifter(folder: Path) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "the clock tests need a C compiler (gcc)"
    source, library = folder / "shift.c", folder / "shift.so"
    source.write_text(SHIFT)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
                   check=True)  # fmt: skip
    return library


def _counts(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/buckets/counts", timeout=5).json().get("clock", {})  # type: ignore[no-any-return]


def test_clock_jumps_lose_and_duplicate_nothing(make_server: Callable[..., Server],
                                                tmp_path: Path) -> None:  # fmt: skip
    shift = tmp_path / "shift"
    shift.write_text("0\n")
    server = make_server(env={"LD_PRELOAD": str(_shifter(tmp_path)),
                              "CLOCK_SHIFT_FILE": str(shift)})  # fmt: skip
    served = httpx.get(f"{server.url}/version", timeout=5)
    assert abs(_server_time(server.url) - time.time()) < 60, served.text
    tasks = write_tasks(tmp_path / "tasks")
    works = [{"pipeline": "clock", "function": "faulttasks.slow", "retries": 3, "backoff": 0,
              "parameters": {"seconds": 1.5, "i": i}} for i in range(3)]  # fmt: skip
    first = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"}, json=works,
                       timeout=10).json()  # fmt: skip
    with runners(server.url, tasks, tmp_path, "clock", "--lease", "30", "--sleep", "0.1",
                 "--max-sleep", "0.2") as (runner,):  # fmt: skip
        wait_for(lambda: _counts(server.url).get("running"), what="a work running")
        shift.write_text("7200\n")  # two hours forward: every lease looks expired
        assert _server_time(server.url) - time.time() > 7000
        wait_for(lambda: any(e.get("outcome") == "lost"
                             for w in _all(server.url) for e in w["history"]),
                 what="the jump took an attempt away")  # fmt: skip
        shift.write_text("-7200\n")  # and back, to two hours behind
        second = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                            json=works, timeout=10).json()  # fmt: skip
        wait_for(lambda: _counts(server.url).get("success", 0) == 6, seconds=90,
                 what="all six finished")  # fmt: skip
        shift.write_text("0\n")
        runner.terminate()
        assert runner.wait(60) == 0
    stored = assert_exactly_once(server.url, set(first + second), finished=set(first + second))
    lost = [e for w in stored["results"] for e in w["history"] if e.get("outcome") == "lost"]
    assert lost, "the forward jump took attempts away"
    # Two hours on, the attempt outlived its lease and its work's timeout (one hour).
    assert {e["reason"] for e in lost} <= {"lease-expired", "timeout"}


def _server_time(url: str) -> float:
    """The server's clock, from the claim time it writes into a lease."""
    with httpx.Client(base_url=url, timeout=10) as http:
        http.post("/buckets/work", json=[{"pipeline": "clock-probe"}]).raise_for_status()
        (work,) = http.post("/buckets/withdraw", json={"pipelines": ["clock-probe"]}).json()
        reply = http.post(f"/buckets/work/{work['id']}/complete",
                          json={"attempt": work["attempt"], "status": "success"})  # fmt: skip
        reply.raise_for_status()
    return float(work["start"])


def _all(url: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=url, timeout=10) as http:
        view = {"query": {"pipeline": "clock"}, "limit": 0}
        return [*http.post("/buckets/view", json=view).json(),
                *http.post("/results/view", json=view).json()]  # fmt: skip
