"""``workflow run`` processes against a real server: outcomes, signals, crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, until

pytestmark = pytest.mark.slow

def _deposit(server: Server, *works: dict[str, Any]) -> list[str]:
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=[{"retries": 0, "backoff": 0, **w} for w in works], timeout=10)
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def _get(server: Server, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()  # type: ignore[no-any-return]


def _finish(process: subprocess.Popen[str], seconds: float = 60) -> str:
    out, _ = process.communicate(timeout=seconds)
    assert process.returncode == 0, out
    return out


def test_outcomes_of_functions_and_commands(server: Server, runner: Any, tmp_path: Path) -> None:
    product = tmp_path / "product.txt"
    ids = _deposit(
        server,
        {"pipeline": "outcomes", "function": "usertasks.double", "parameters": {"x": 21}},
        {"pipeline": "outcomes", "function": "usertasks.boom", "parameters": {"x": 1}},
        {"pipeline": "outcomes", "function": "usertasks.slow", "parameters": {"seconds": 30},
         "timeout": 2},
        {"pipeline": "outcomes", "function": "usertasks.vanish"},
        {"pipeline": "outcomes", "function": "usertasks.segfault"},
        {"pipeline": "outcomes", "function": "usertasks.wrong"},
        {"pipeline": "outcomes", "command": ["sh", "-c", "echo out; echo err >&2"]},
        {"pipeline": "outcomes", "command": ["sh", "-c", "echo partial; exit 3"]},
        {"pipeline": "outcomes", "function": "usertasks.flaky",
         "parameters": {"marker": str(tmp_path / "marker")}},
        {"pipeline": "outcomes", "function": "usertasks.with_products",
         "parameters": {"path": str(product)}},
    )  # fmt: skip
    out = _finish(runner("outcomes", "--burst", "--concurrency", "2"))
    works = [_get(server, id) for id in ids]
    (double, boom, slow, vanish, segv, wrong, echo, exit3, flaky, products) = works
    assert (double["status"], double["results"]) == ("success", {"doubled": 42})
    error = boom["history"][0]["error"]
    assert boom["status"] == "failure" and error["type"] == "ValueError"
    assert "bad input 1" in error["message"] and "raise ValueError" in error["traceback"]
    assert slow["history"][0]["error"]["type"] == "Timeout"
    assert slow["history"][0]["reason"] == "timeout"
    assert "code 7" in vanish["history"][0]["error"]["message"]
    assert "SIGSEGV" in segv["history"][0]["error"]["message"]
    assert "returned list" in wrong["history"][0]["error"]["message"]
    assert echo["status"] == "success"
    assert echo["results"]["stdout"] == "out\n" and echo["results"]["stderr"] == "err\n"
    assert exit3["status"] == "failure" and exit3["results"]["returncode"] == 3
    assert exit3["results"]["stdout"] == "partial\n"
    assert flaky["status"] == "success" and flaky["attempt"] == 2
    assert [e["outcome"] for e in flaky["history"]] == ["retry", "success"]
    assert products["products"] == [str(product)] and product.read_text() == "outcomes"
    assert out.count("success") >= 4 and "ValueError: bad input 1" in out


def test_priorities_are_respected_across_pipelines(server: Server, runner: Any) -> None:
    ids = _deposit(server, *[
        {"pipeline": pipeline, "priority": priority, "function": "usertasks.double",
         "parameters": {"x": priority}}
        for pipeline, priority in [("low", 1), ("high", 5), ("low", 4), ("high", 2), ("low", 3)]
    ])  # fmt: skip
    _finish(runner("-p", "low", "-p", "high", "--burst"))
    # When each attempt began: works claimed together share their claim time ("start").
    works = [_get(server, id) for id in ids]
    starts = sorted((work["history"][0]["started"], work["priority"]) for work in works)
    assert [priority for _, priority in starts] == [5, 4, 3, 2, 1]


def test_sigterm_hands_running_work_back_and_it_is_done_once(server: Server, runner: Any
                                                              ) -> None:  # fmt: skip
    (id,) = _deposit(server, {"pipeline": "term", "function": "usertasks.slow",
                              "parameters": {"seconds": 3}})  # fmt: skip
    first = runner("term", "--grace", "0.5")
    until(lambda: _get(server, id)["status"] == "running")
    first.send_signal(signal.SIGTERM)
    out = _finish(first, 30)
    assert "handed back" in out
    queued = _get(server, id)
    assert queued["status"] == "queued"
    assert [(e["outcome"], e["reason"]) for e in queued["history"]] == [
        ("released", "runner-stopping")]
    _finish(runner("term", "--burst"), 60)
    done = _get(server, id)
    assert done["status"] == "success" and done["results"] == {"slept": 3}
    assert [e["outcome"] for e in done["history"]] == ["released", "success"]
    assert done["attempt"] == 2


def test_kill_9_of_a_runner_is_recovered_by_another(server: Server, runner: Any) -> None:
    (id,) = _deposit(server, {"pipeline": "killed", "function": "usertasks.slow",
                              "parameters": {"seconds": 2}, "retries": 1})  # fmt: skip
    doomed = runner("killed", "--lease", "1")
    until(lambda: _get(server, id)["status"] == "running")
    doomed.kill()
    doomed.communicate()
    until(lambda: _get(server, id)["status"] == "queued", seconds=15)
    _finish(runner("killed", "--burst", "--lease", "5"))
    done = _get(server, id)
    assert done["status"] == "success" and done["results"] == {"slept": 2}
    assert [(e["attempt"], e["outcome"]) for e in done["history"]] == [(1, "lost"), (2, "success")]
    assert done["history"][0]["reason"] == "lease-expired"


def test_result_arrives_after_the_server_was_down_for_10_s(server: Server, runner: Any) -> None:
    (id,) = _deposit(server, {"pipeline": "outage", "function": "usertasks.slow",
                              "parameters": {"seconds": 1}})  # fmt: skip
    worker = runner("outage", "--lives", "1", "--lease", "60")
    until(lambda: _get(server, id)["status"] == "running")
    server.kill()
    time.sleep(10)
    server.start()
    out = _finish(worker, 90)
    done = _get(server, id)
    assert done["status"] == "success" and done["results"] == {"slept": 1}, out
    assert [e["outcome"] for e in done["history"]] == ["success"]


def test_outcome_spooled_by_a_dead_runner_is_delivered_by_the_next(
    server: Server, runner: Any, tmp_path: Path
) -> None:
    ids = _deposit(server, *[{"pipeline": "spooled", "function": "usertasks.double",
                              "parameters": {"x": x}} for x in (5, 6, 7)])  # fmt: skip
    claim = {"pipelines": ["spooled"], "lease": 120, "runner": "died-after-finishing",
             "limit": 3}  # fmt: skip
    works = httpx.post(f"{server.url}/buckets/withdraw", json=claim, timeout=10).json()
    attempts = {w["id"]: w["attempt"] for w in works}

    def record(id: str, doubled: int) -> dict[str, Any]:
        return {"id": id, "attempt": attempts.get(id, 1), "reason": None,
                "body": {"status": "success", "results": {"doubled": doubled}}}  # fmt: skip

    # What runners wrote before they reported, then they died: outcomes on disk only.
    spool = tmp_path / "spool"
    spool.mkdir()
    journal = [record(ids[0], 10), record("settled-elsewhere", 0),
               {"settled": [["settled-elsewhere", 1]]}, record(ids[1], 12)]  # fmt: skip
    (spool / "1-2.journal").write_text("".join(json.dumps(line) + "\n" for line in journal)
                                       + '{"id": "cut short by a cra')  # fmt: skip
    # ... and files of older versions: a list, and a single record.
    (spool / "1-3-000000.json").write_text(json.dumps([record(ids[2], 14)]))
    (spool / "gone.1.json").write_text(json.dumps(record("gone", 0)))
    out = _finish(runner("spooled", "--burst", "--spool", str(spool)))
    for id, doubled in zip(ids, (10, 12, 14), strict=True):
        done = _get(server, id)
        assert (done["status"], done["results"]) == ("success", {"doubled": doubled})
        assert [e["outcome"] for e in done["history"]] == ["success"]
    assert list(spool.iterdir()) == [], "delivered and stale outcomes leave the spool"
    assert "gone attempt 1: dropped as stale" in out
    assert "settled-elsewhere" not in out, "a settled outcome is not sent again"


def test_cancelling_a_running_work_stops_its_attempt(server: Server, runner: Any) -> None:
    (id,) = _deposit(server, {"pipeline": "cancel", "function": "usertasks.slow",
                              "parameters": {"seconds": 60}})  # fmt: skip
    worker = runner("cancel", "--lives", "1", "--lease", "1")
    until(lambda: _get(server, id)["status"] == "running")
    started = time.monotonic()
    assert httpx.post(f"{server.url}/buckets/work/{id}/cancel", timeout=10).status_code == 200
    out = _finish(worker, 30)
    assert time.monotonic() - started < 15, "the attempt was stopped, not waited for"
    assert "taken away" in out
    done = _get(server, id)
    assert done["status"] == "cancelled"
    assert [e.get("outcome") or e.get("action") for e in done["history"]] == [
        "cancelled", "cancel"]


def test_undelivered_outcome_exits_3_and_the_next_runner_delivers_it(
    server: Server, runner: Any
) -> None:
    (id,) = _deposit(server, {"pipeline": "later", "function": "usertasks.slow",
                              "parameters": {"seconds": 1}})  # fmt: skip
    first = runner("later", "--lives", "1", "--grace", "1")
    until(lambda: _get(server, id)["status"] == "running")
    server.kill()
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 3, out
    assert "not yet delivered" in out
    server.start()
    assert _get(server, id)["status"] == "running"
    _finish(runner("later", "--burst"))
    done = _get(server, id)
    assert (done["status"], done["results"]) == ("success", {"slept": 1})
    assert [e["outcome"] for e in done["history"]] == ["success"]


def test_sigterm_while_the_server_is_still_away_stops_the_runner_at_once(
        runner: Any) -> None:  # fmt: skip
    from harness import free_port

    waiting = runner("nowhere", url=f"http://127.0.0.1:{free_port()}")  # nobody listens
    time.sleep(2)  # retrying its first call with backoff
    assert waiting.poll() is None
    waiting.terminate()
    out, _ = waiting.communicate(timeout=10)
    assert waiting.returncode == 0, out
    assert "SIGTERM before any work was claimed: stopping" in out


def test_an_idle_runner_waits_at_the_server_and_starts_new_work_at_once(
        server: Server, runner: Any) -> None:  # fmt: skip
    process = runner("idle", "usertasks.double")
    time.sleep(8)  # idle this long, a runner that polls would look again only in seconds
    came = time.monotonic()
    (id,) = _deposit(server, {"pipeline": "idle", "parameters": {"x": 4}})
    until(lambda: _get(server, id)["status"] == "success", seconds=15)
    assert time.monotonic() - came < 2.0, "picked up as it came"
    assert _get(server, id)["results"] == {"doubled": 8}
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _finish(process, seconds=15)
    assert time.monotonic() - stopped < 5, "its held withdraw does not hold up its stop"


def _claims(server: Server, ids: list[str]) -> list[int]:
    """How many of the works each claim took, by the claim time their history shares."""
    sizes: dict[float, int] = {}
    for id in ids:
        claimed = _get(server, id)["history"][0]["claimed"]
        sizes[claimed] = sizes.get(claimed, 0) + 1
    return sorted(sizes.values())


def test_a_runner_left_to_choose_claims_short_works_many_at_once_and_slow_ones_alone(
        server: Server, runner: Any) -> None:  # fmt: skip
    quick = _deposit(server, *[{"pipeline": "quick", "function": "usertasks.double",
                                "parameters": {"x": n}} for n in range(300)])  # fmt: skip
    _finish(runner("quick", "--burst"))
    claims = _claims(server, quick)
    assert sum(claims) == 300 and len(claims) <= 30 and max(claims) >= 32, claims
    # 0.3 s each, timeout 5 s: one in hand already waits up to 5% of the timeout.
    slow = _deposit(server, *[{"pipeline": "slow", "function": "usertasks.slow",
                               "parameters": {"seconds": 0.3}, "timeout": 5}
                              for _ in range(6)])  # fmt: skip
    _finish(runner("slow", "--burst"))
    assert _claims(server, slow) == [1] * 6
