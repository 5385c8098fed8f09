"""Why a queued work is not running: the same on every backend."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asking import ended, runner_of, want, who

from workflow.errors import NotFound


def _codes(answer: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in answer["reasons"]]


def test_a_work_behind_others_says_how_many_come_first(buckets: Any, make_work: Any,
                                                        pipeline: str) -> None:  # fmt: skip
    buckets.announce(runner_of(pipeline))  # a runner takes them: only the order holds them
    first, older, mine, later = (make_work(priority=5), make_work(priority=3),
                                 make_work(priority=3), make_work(priority=3))  # fmt: skip
    for work in (first, older, mine, later):  # one at a time: each newer than the last
        buckets.deposit([work])
        time.sleep(0.002)
    answer = buckets.why(mine.id)
    assert answer["status"] == "queued" and _codes(answer) == ["behind"]
    (behind,) = answer["reasons"]
    assert behind["ahead"] == 2 and f"2 queued works of {pipeline}" in behind["message"]
    assert buckets.why(first.id)["reasons"] == []  # next in line


def test_a_paused_pipeline_comes_first_and_names_who_paused_it(buckets: Any, make_work: Any,
                                                               pipeline: str) -> None:  # fmt: skip
    buckets.announce(runner_of(pipeline))
    ahead, mine = make_work(priority=5), make_work(priority=1)
    buckets.deposit([ahead, mine])
    buckets.configure(pipeline, {"paused": True})
    answer = buckets.why(mine.id)
    assert _codes(answer) == ["paused", "behind"]
    paused = answer["reasons"][0]
    assert paused["by"] == who(buckets) and paused["since"] is not None
    assert f"its pipeline {pipeline} is paused" in paused["message"]
    assert (f" by {who(buckets)} since " in paused["message"]) == (who(buckets) is not None)
    buckets.configure(pipeline, {"paused": False})
    assert _codes(buckets.why(mine.id)) == ["behind"]


def test_a_work_in_backoff_says_until_when_and_one_running_has_no_reasons(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    buckets.announce(runner_of(pipeline))
    buckets.deposit([make_work(retries=2, backoff=600)])
    (taken,) = buckets.withdraw(want(pipeline))
    running = buckets.why(taken["id"])
    assert running["status"] == "running" and running["reasons"] == []
    buckets.complete(ended(taken["id"], taken["attempt"], "failure",
                           error={"type": "E", "message": "m"}))  # fmt: skip
    answer = buckets.why(taken["id"])
    assert answer["status"] == "queued" and _codes(answer) == ["backoff"]
    assert answer["reasons"][0]["until"] > time.time() + 500
    with pytest.raises(NotFound):
        buckets.why("no-such-work")
