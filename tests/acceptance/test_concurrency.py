"""Many withdrawing processes against one server: each work claimed once, in order."""

from __future__ import annotations

import bisect
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from harness import Server

pytestmark = pytest.mark.slow

#: A withdrawing process: claims until the buckets are empty, then prints its claims.
WITHDRAWER = """
import json, sys, time
import httpx

url, name, limit, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
claims = []
with httpx.Client(base_url=url, timeout=60) as http:
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        sent = time.monotonic()
        reply = http.post("/buckets/withdraw", json={
            "pipelines": ["race-a", "race-b"], "limit": limit, "runner": name})
        received = time.monotonic()
        reply.raise_for_status()
        works = reply.json()
        if not works:
            break
        claims += [[w["id"], w["priority"], w["attempt"], sent, received] for w in works]
print(json.dumps(claims))
"""


def test_eight_processes_claim_two_thousand_works_exactly_once_in_priority_order(
    server: Server, tmp_path: Path
) -> None:
    rng = random.Random(7)
    works = [{"pipeline": rng.choice(["race-a", "race-b"]), "priority": rng.randint(1, 5),
              "parameters": {"i": i}} for i in range(2000)]  # fmt: skip
    deposited: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for start in range(0, len(works), 500):
            reply = http.post("/buckets/work", params={"return_ids": "true"},
                              json=works[start : start + 500])  # fmt: skip
            reply.raise_for_status()
            deposited += reply.json()
    assert len(set(deposited)) == 2000

    start_at = time.time() + 1.5  # every process starts claiming at the same moment
    procs = [
        subprocess.Popen([sys.executable, "-c", WITHDRAWER, server.url, f"w{n}",
                          "1" if n % 2 else "7", str(start_at)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
        for n in range(8)
    ]
    per_process = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        per_process.append(json.loads(out))

    claims = [c for claims in per_process for c in claims]
    ids = [c[0] for c in claims]
    assert len(ids) == 2000, "every work is claimed"
    assert sorted(ids) == sorted(deposited), "each exactly once, and only deposited ones"
    assert all(c[2] == 1 for c in claims)
    assert all(len(p) > 0 for p in per_process), "every process got work"

    # Priority order: a claim answered before another was asked for never has a lower
    # priority than it. (Within one process this means priorities never go up.)
    for claims_of_one in per_process:
        priorities = [c[1] for c in claims_of_one]
        assert priorities == sorted(priorities, reverse=True)
    by_answer = sorted(claims, key=lambda c: c[4])
    answered_at = [c[4] for c in by_answer]
    lowest_so_far = []
    for claim in by_answer:
        lowest_so_far.append(min(claim[1], lowest_so_far[-1] if lowest_so_far else 5))
    for claim in claims:
        done_before = bisect.bisect_left(answered_at, claim[3])
        if done_before:
            assert lowest_so_far[done_before - 1] >= claim[1], f"out of order: {claim}"

    with httpx.Client(base_url=server.url) as http:
        status = http.get("/buckets/status").json()
    assert (status["queued"], status["running"]) == (0, 2000)
