"""Pipeline runs, in process on SQLite and MongoDB: stages deposit their works only once
the stage before has finished, matrices expand (also from an earlier step's results at
run time), ``if:`` picks the steps, and a crash in the middle of a stage's deposit loses
and duplicates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import mongo_store

from workflow.buckets import Buckets
from workflow.errors import InvalidWork, StoreUnavailable
from workflow.pipelines import Pipelines
from workflow.store import open_store
from workflow.wire import Outcome, Withdraw


@pytest.fixture(params=["sqlite", "mongo"])
def pipelines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pipelines]:
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}") if request.param == "sqlite" \
        else mongo_store()  # fmt: skip
    yield Pipelines(Buckets(store))
    store.close()


def _config(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "2", "name": "test-pipeline", "defaults": {"site": "local"},
            "pipeline": {"steps": list(steps)}, **top}  # fmt: skip


def _finish(pipelines: Pipelines, bucket: str, status: str = "success",
            results: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run every queued work of ``bucket`` to ``status``; the works, as they were."""
    buckets = pipelines.buckets
    taken = buckets.withdraw(Withdraw(pipelines=[bucket], limit=1000))
    for work in taken:
        error = {"type": "E", "message": "made to fail"} if status == "failure" else None
        buckets.complete(Outcome(id=work["id"], attempt=work["attempt"], status=status,  # type: ignore[arg-type]
                                 results=results(work) if callable(results) else results,
                                 error=error))  # fmt: skip
    return taken


def _queued(pipelines: Pipelines, bucket: str) -> list[dict[str, Any]]:
    return pipelines.buckets.works([bucket], ["queued"], limit=10_000)


def test_a_three_by_three_matrix_then_one_step_after_all_nine_finished(
        pipelines: Pipelines) -> None:  # fmt: skip
    run = pipelines.deploy(_config(
        {"name": "grid", "stage": 1, "matrix": {"alpha": [1, 2, 3], "beta": {"range": [7, 13, 2]}},
         "work": {"function": "math.hypot", "parameters": {"alpha": "${{ matrix.alpha }}",
                                                          "beta": "${{ matrix.beta }}"},
                  "tags": ["a${{ matrix.alpha }}"], "retries": 0}},
        {"name": "summary", "stage": 2, "work": {"function": "math.fsum", "retries": 0}}))
    grid = _queued(pipelines, "grid")
    assert len(grid) == 9 and run["current_stage"] == 1
    assert sorted((w["parameters"]["alpha"], w["parameters"]["beta"]) for w in grid) == [
        (a, b) for a in (1, 2, 3) for b in (7, 9, 11)]
    assert {w["config"]["parent"] for w in grid} == {run["id"]} and grid[0]["site"] == "local"
    assert sorted(w["tags"][0] for w in grid)[::3] == ["a1", "a2", "a3"]
    taken = pipelines.buckets.withdraw(Withdraw(pipelines=["grid"], limit=8))
    for work in taken:
        pipelines.buckets.complete(Outcome(id=work["id"], attempt=1, status="success"))
    assert pipelines.advance(run["id"])["current_stage"] == 1
    assert _queued(pipelines, "summary") == [], "not before all nine have finished"
    _finish(pipelines, "grid")
    moved = pipelines.advance(run["id"])
    assert moved["current_stage"] == 2 and len(_queued(pipelines, "summary")) == 1
    assert [s["status"] for s in moved["steps"]] == ["success", "running"]
    _finish(pipelines, "summary")
    done = pipelines.advance(run["id"])
    assert done["status"] == "success" and done["stop"] is not None


def _branching(pipelines: Pipelines, first: str) -> dict[str, Any]:
    run = pipelines.deploy(_config(
        {"name": "first", "stage": 1, "work": {"function": "m.f", "retries": 0}},
        {"name": "report", "stage": 2, "if": "failure", "work": {"function": "m.f"}},
        {"name": "next", "stage": 2, "work": {"function": "m.f"}},
        {"name": "check", "stage": 2, "if": "${{ pipeline.first.status == 'success' }}",
         "work": {"function": "m.f"}},
        {"name": "last", "stage": 3, "if": "always", "work": {"function": "m.f"}}))
    _finish(pipelines, "first", first)
    return pipelines.advance(run["id"])


def test_an_if_failure_step_runs_only_when_the_stage_before_failed(
        pipelines: Pipelines) -> None:  # fmt: skip
    good = _branching(pipelines, "success")
    assert {s["name"]: s["status"] for s in good["steps"]} == {
        "first": "success", "report": "skipped", "next": "running", "check": "running",
        "last": "created"}
    assert _queued(pipelines, "report") == []
    for bucket in ("next", "check"):
        _finish(pipelines, bucket)
    pipelines.advance(good["id"])
    _finish(pipelines, "last")
    assert pipelines.advance(good["id"])["status"] == "success"

    bad = _branching(pipelines, "failure")
    assert {s["name"]: s["status"] for s in bad["steps"]} == {
        "first": "failure", "report": "running", "next": "skipped", "check": "skipped",
        "last": "created"}
    _finish(pipelines, "report")
    pipelines.advance(bad["id"])
    _finish(pipelines, "last")
    ended = pipelines.advance(bad["id"])
    assert ended["status"] == "failure" and ended["steps"][4]["status"] == "success"


def test_a_matrix_built_at_run_time_from_an_earlier_steps_results(
        pipelines: Pipelines) -> None:  # fmt: skip
    run = pipelines.deploy(_config(
        {"name": "find", "stage": 1, "work": {"function": "m.find"}},
        {"name": "fold", "stage": 2, "matrix": {"info": "${{ pipeline.find.results.found }}"},
         "work": {"function": "m.fold", "parameters": {"ra": "${{ matrix.info.ra }}",
                                                       "name": "ra-${{ matrix.info.ra }}"}}}))
    _finish(pipelines, "find", results={"found": [{"ra": 10.5}, {"ra": 20.5}, {"ra": 30.5}]})
    pipelines.advance(run["id"])
    folds = _queued(pipelines, "fold")
    assert sorted(w["parameters"]["ra"] for w in folds) == [10.5, 20.5, 30.5]
    assert sorted(w["parameters"]["name"] for w in folds) == ["ra-10.5", "ra-20.5", "ra-30.5"]


def test_a_step_whose_run_time_matrix_is_not_a_list_fails_naming_why(
        pipelines: Pipelines) -> None:  # fmt: skip
    run = pipelines.deploy(_config(
        {"name": "find", "stage": 1, "work": {"function": "m.find"}},
        {"name": "fold", "stage": 2, "matrix": {"info": "${{ pipeline.find.results.found }}"},
         "work": {"function": "m.fold"}}))
    _finish(pipelines, "find", results={"found": 3})
    ended = pipelines.advance(run["id"])
    assert ended["status"] == "failure"
    reason = ended["steps"][1]["reason"]
    assert "matrix.info" in reason and "not a non-empty list" in reason


def test_a_crash_in_the_middle_of_a_stages_deposit_loses_and_duplicates_nothing(
        pipelines: Pipelines, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    deposit = pipelines.buckets.deposit
    calls = {"n": 0}

    def crashing(works: Any, user: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # half the works go in, then the server dies
            deposit(works[: len(works) // 2])
            raise StoreUnavailable("the server was killed")
        return deposit(works)

    monkeypatch.setattr(pipelines.buckets, "deposit", crashing)
    with pytest.raises(StoreUnavailable):
        pipelines.deploy(_config({"name": "many", "matrix": {"n": list(range(40))}, "work": {
            "function": "m.f", "parameters": {"n": "${{ matrix.n }}"}}}))
    (run,) = pipelines.runs()
    assert len(_queued(pipelines, "many")) == 20 and run["steps"][0]["planned"]
    again = pipelines.advance(run["id"])
    queued = _queued(pipelines, "many")
    assert len(queued) == 40 and len({w["id"] for w in queued}) == 40
    assert sorted(w["parameters"]["n"] for w in queued) == list(range(40))
    assert again["steps"][0]["deposited"] and again["steps"][0]["works"] == [
        f"{run['id']}-0-1-{m}" for m in range(40)]
    assert pipelines.advance(run["id"])["version"] == again["version"], "nothing more to do"


def test_cancel_and_retry(pipelines: Pipelines) -> None:
    run = pipelines.deploy(_config({"name": "one", "matrix": {"n": [1, 2]},
                                    "work": {"function": "m.f", "retries": 0}},
                                   {"name": "two", "stage": 2, "work": {"function": "m.f"}}))
    cancelled = pipelines.cancel(run["id"])
    assert cancelled["status"] == "cancelled" and _queued(pipelines, "one") == []
    assert [s["status"] for s in cancelled["steps"]] == ["cancelled", "cancelled"]
    again = pipelines.retry(run["id"])
    assert again["status"] == "running" and len(_queued(pipelines, "one")) == 2
    assert again["steps"][0]["try"] == 2 and again["steps"][0]["works"][0].endswith("-0-2-0")
    _finish(pipelines, "one")
    pipelines.advance(run["id"])
    _finish(pipelines, "two")
    assert pipelines.advance(run["id"])["status"] == "success"


@pytest.mark.parametrize("wrong, field", [
    ({"version": "1", "name": "x", "pipeline": {"steps": [{"name": "a"}]}}, "version"),
    ({"version": "2", "name": "x", "pipeline": {"steps": []}}, "pipeline.steps"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [{"name": "a"}, {"name": "a"}]}},
     "pipeline.steps.1.name"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [
        {"name": "a", "work": {"parameters": {"p": "${{ pipeline.b.results.k }}"}}},
        {"name": "b", "stage": 2}]}}, "pipeline.steps.0"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [
        {"name": "a", "matrix": {"k": "five"}}]}}, "pipeline.steps.0.matrix.k"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [{"name": "a", "if": "sometimes"}]}},
     "pipeline.steps.0.if"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [
        {"name": "a", "matrix": {"n": {"range": [0, 200]}, "m": list(range(60))}}]}},
     "pipeline.steps.0.matrix"),
    ({"version": "2", "name": "x", "pipeline": {"matrix": {"k": {"rang": [1]}},
                                                "steps": [{"name": "a"}]}}, "pipeline.matrix.k"),
    ({"version": "2", "name": "x", "pipeline": {"steps": [
        {"name": "a", "work": {"parameters": {"p": "${{ env.HOME }}"}}}]}}, "pipeline.steps.0"),
])  # fmt: skip
def test_a_wrong_configuration_is_refused_naming_the_field(
        pipelines: Pipelines, wrong: dict[str, Any], field: str) -> None:  # fmt: skip
    with pytest.raises(InvalidWork) as refused:
        pipelines.deploy(wrong)
    assert refused.value.field == field, refused.value.message
    assert pipelines.runs() == []
