"""A slot runs a batch of attempts in one warm child: each attempt gets its own outcome,
whatever the others do (crash, overrun, cancel), and a halt starts nothing more."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow.runner.slot import Attempt, Slot
from workflow.wire import Outcome

pytestmark = pytest.mark.slow

TASKS = '''
import os, time

def ok(n):
    return {"n": n, "pid": os.getpid()}

def crash():
    os._exit(3)

def sleep(seconds):
    time.sleep(seconds)
    return {"slept": seconds}

def numpy_like():
    return {1: "int key", "nested": {2: 3}}

def not_json():
    return {"when": object()}
'''


@pytest.fixture
def slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Slot]:
    (tmp_path / "batchtasks.py").write_text(textwrap.dedent(TASKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("batchtasks", None)
    slot = Slot()
    yield slot
    slot.close()


def _attempt(key: str, function: str, timeout: float = 30, **parameters: object) -> Attempt:
    return Attempt(key, f"batchtasks.{function}", parameters, {"id": key, "timeout": timeout},
                   time.monotonic() + timeout)  # fmt: skip


def _run(slot: Slot, attempts: list[Attempt]) -> tuple[dict[str, Outcome], list[int]]:
    """Outcomes by key, and the sizes of the groups they were delivered in."""
    outcomes: dict[str, Outcome] = {}
    groups: list[int] = []

    def deliver(done: list[tuple[Attempt, Outcome]]) -> None:
        groups.append(len(done))
        for attempt, outcome in done:
            assert attempt.key not in outcomes, "one outcome per attempt"
            outcomes[attempt.key] = outcome

    slot.run_many(attempts, deliver)
    return outcomes, groups


def test_a_batch_runs_in_one_child_and_a_crash_is_charged_to_its_own_attempt(slot: Slot) -> None:
    batch = [_attempt(f"a{n}", "ok", n=n) for n in range(5)]
    batch.insert(2, _attempt("boom", "crash"))
    outcomes, _ = _run(slot, batch)
    assert list(outcomes) == ["a0", "a1", "boom", "a2", "a3", "a4"], "in order"
    error = outcomes["boom"].error
    assert outcomes["boom"].status == "failure" and error is not None
    assert error.type == "ProcessDied" and "exited with code 3" in str(error.message)
    results = [outcomes[f"a{n}"].results or {} for n in range(5)]
    assert [r["n"] for r in results] == [0, 1, 2, 3, 4]
    before, after = {r["pid"] for r in results[:2]}, {r["pid"] for r in results[2:]}
    assert len(before) == 1 and len(after) == 1 and before != after, (
        "one child per batch, replaced after the crash")


def test_an_overrun_is_killed_and_the_rest_of_the_batch_still_runs(slot: Slot) -> None:
    batch = [_attempt("quick", "ok", n=1), _attempt("slow", "sleep", timeout=0.5, seconds=30),
             _attempt("after", "ok", n=2)]  # fmt: skip
    began = time.monotonic()
    outcomes, _ = _run(slot, batch)
    assert time.monotonic() - began < 10
    assert outcomes["quick"].status == "success" and outcomes["after"].status == "success"
    slow = outcomes["slow"]
    assert slow.status == "failure" and slow.reason == "timeout"
    assert slow.error is not None and slow.error.type == "Timeout"


def test_abort_of_one_queued_attempt_skips_it_and_abort_of_the_running_one_kills_it(
    slot: Slot,
) -> None:
    batch = [_attempt("first", "sleep", seconds=1.0), _attempt("skipped", "ok", n=1),
             _attempt("last", "ok", n=2)]  # fmt: skip
    threading.Timer(0.3, slot.abort, args=("skipped",)).start()
    outcomes, _ = _run(slot, batch)
    assert outcomes["first"].results == {"slept": 1.0}
    assert outcomes["skipped"].reason == "aborted"
    assert outcomes["last"].status == "success"

    batch = [_attempt("long", "sleep", seconds=30), _attempt("next", "ok", n=3)]
    threading.Timer(0.5, slot.abort, args=("long",)).start()
    began = time.monotonic()
    outcomes, _ = _run(slot, batch)
    assert time.monotonic() - began < 10
    assert outcomes["long"].reason == "aborted"
    assert outcomes["next"].results is not None and outcomes["next"].results["n"] == 3


def test_halt_lets_the_running_attempt_finish_and_starts_nothing_more(slot: Slot) -> None:
    batch = [_attempt("running", "sleep", seconds=1.0),
             *[_attempt(f"later{n}", "ok", n=n) for n in range(3)]]  # fmt: skip
    threading.Timer(0.3, slot.halt).start()
    outcomes, _ = _run(slot, batch)
    assert outcomes["running"].results == {"slept": 1.0}
    assert all(outcomes[f"later{n}"].reason == "aborted" for n in range(3))
    assert all(outcomes[f"later{n}"].results is None for n in range(3))


def test_results_become_plain_json_or_a_failure_that_says_why(slot: Slot) -> None:
    outcomes, _ = _run(slot, [_attempt("keys", "numpy_like"), _attempt("bad", "not_json")])
    assert outcomes["keys"].results == {"1": "int key", "nested": {"2": 3}}
    bad = outcomes["bad"]
    assert bad.status == "failure" and bad.error is not None and bad.error.type == "TypeError"
    assert "cannot be stored as JSON" in str(bad.error.message)
