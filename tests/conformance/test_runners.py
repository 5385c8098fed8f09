"""The runners on record, and the reasons ``why`` gives from them: the same on every
backend."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from asking import ended, runner_of, want

from workflow.errors import NotFound


def _listed(buckets: Any, id: str) -> dict[str, Any]:
    (found,) = [r for r in buckets.runners() if r["id"] == id]
    return found


def test_an_announced_runner_is_online_with_what_it_takes_and_holds(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    info = runner_of(pipeline, tags=["gpu"], site="chime", prefetch=4, runs="mod.func")
    shown = buckets.announce(info)
    assert shown["state"] == "online" and shown["holding"] == 0 and shown["works"] == []
    listed = _listed(buckets, info.id)
    for key in ("name", "host", "pid", "version", "pipelines", "site", "tags", "concurrency",
                "prefetch", "lease", "runs"):
        assert listed[key] == getattr(info, key), key
    assert listed["start"] > 0 and listed["done"] == listed["failed"] == 0
    assert abs(listed["last_seen"] - time.time()) < 5
    buckets.deposit([make_work(site="chime", tags=["gpu"]) for _ in range(3)])
    taken = buckets.withdraw(want(pipeline, limit=2, runner=info.id, host="h1",
                                  site="chime"))  # fmt: skip
    listed = _listed(buckets, info.id)
    assert listed["holding"] == 2
    assert sorted(w["id"] for w in listed["works"]) == sorted(w["id"] for w in taken)
    buckets.complete(ended(taken[0]["id"], 1, "success"))
    buckets.complete(ended(taken[1]["id"], 1, "failure", error={"type": "E", "message": "m"}))
    listed = _listed(buckets, info.id)
    assert (listed["done"], listed["failed"], listed["holding"]) == (1, 1, 0)


def test_a_runner_that_says_goodbye_is_stopped_and_one_gone_quiet_offline(
        buckets: Any, pipeline: str) -> None:  # fmt: skip
    leaving, quiet = runner_of(pipeline), runner_of(pipeline, lease=0.5)
    buckets.announce(leaving)
    buckets.announce(quiet)
    assert buckets.goodbye(leaving.id)["state"] == "stopped"
    assert _listed(buckets, leaving.id)["state"] == "stopped"
    time.sleep(0.8)
    assert _listed(buckets, quiet.id)["state"] == "offline"
    states = [r["state"] for r in buckets.runners()]
    assert states == sorted(states, key=["online", "offline", "stopped"].index)
    with pytest.raises(NotFound):
        buckets.goodbye(f"no-such-runner-{uuid.uuid4().hex}")
    buckets.announce(leaving)  # started again under its id: online, counted afresh
    assert _listed(buckets, leaving.id)["state"] == "online"


def test_a_runner_that_never_announced_itself_is_recorded_from_its_withdraws(
        buckets: Any, pipeline: str) -> None:  # fmt: skip
    id = f"old-{uuid.uuid4().hex[:10]}"
    buckets.withdraw(want(pipeline, runner=id, host="h2", tags=["x"]))
    listed = _listed(buckets, id)
    assert listed["state"] == "online" and listed["announced"] is False
    assert (listed["host"], listed["pipelines"], listed["tags"]) == ("h2", [pipeline], ["x"])


def test_why_says_no_runner_takes_a_work_and_names_the_runners_there_are(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = make_work()
    buckets.deposit([work])
    elsewhere = runner_of(f"{pipeline}-other")
    buckets.announce(elsewhere)
    answer = buckets.why(work.id)
    (reason,) = answer["reasons"]
    assert reason["code"] == "no-runner"
    assert f"no online runner takes pipeline {pipeline}" in reason["message"]
    assert f"{elsewhere.name} takes pipelines {pipeline}-other" in reason["message"]
    assert elsewhere.id in [r["id"] for r in reason["runners"]]
    wrong_site = runner_of(pipeline, site="elsewhere")  # takes the pipeline, not the site
    buckets.announce(wrong_site)
    assert [r["code"] for r in buckets.why(work.id)["reasons"]] == ["no-runner"]
    buckets.announce(runner_of(pipeline))
    assert buckets.why(work.id)["reasons"] == []  # next in line, and a runner takes it


def test_why_says_busy_while_every_runner_holds_all_it_runs(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    runner = runner_of(pipeline, concurrency=2)
    buckets.announce(runner)
    first, second, third = make_work(priority=5), make_work(priority=5), make_work(priority=1)
    buckets.deposit([first, second, third])
    buckets.withdraw(want(pipeline, limit=2, runner=runner.id))
    answer = buckets.why(third.id)
    assert [r["code"] for r in answer["reasons"]] == ["busy"]
    assert f"{runner.name} holds 2 (runs 2 at once)" in answer["reasons"][0]["message"]
    buckets.complete(ended(first.id, 1, "success"))
    assert buckets.why(third.id)["reasons"] == []
    buckets.goodbye(runner.id)
    assert [r["code"] for r in buckets.why(third.id)["reasons"]] == ["no-runner"]
