"""Schedules, in process on SQLite and MongoDB, driven by a test clock: ``lives: 3``
spawns exactly three runs, missed times are made up by one run, a paused schedule
spawns nothing, and a spawn interrupted by a crash is counted once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import mongo_store

from workflow.buckets import Buckets
from workflow.errors import InvalidWork
from workflow.pipelines import Pipelines
from workflow.store import open_store

#: 2026-12-06 10:02 UTC.
START = dt.datetime(2026, 12, 6, 10, 2, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "mongo"])
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Pipelines, Clock]]:
    store = open_store(f"sqlite:///{tmp_path / 'schedules.db'}") if request.param == "sqlite" \
        else mongo_store()  # fmt: skip
    clock = Clock()
    yield Pipelines(Buckets(store, clock=clock), clock=clock), clock
    store.close()


def _config(**schedule: Any) -> dict[str, Any]:
    return {"version": "2", "name": "nightly", "schedule": schedule,
            "pipeline": {"steps": [{"name": "reprocess", "work": {"function": "m.f"}}]}}


def test_lives_three_spawns_exactly_three_runs(clocked: tuple[Pipelines, Clock]) -> None:
    pipelines, clock = clocked
    schedule = pipelines.deploy(_config(cronspec="*/5 * * * *", lives=3))
    assert schedule["kind"] == "schedule" and pipelines.runs() == []
    assert schedule["next_time"] == START + 3 * 60, "10:05"
    assert pipelines.schedules.spawn_due() == 0
    spawned = []
    for _ in range(6):
        clock.now += 5 * 60
        spawned.append(pipelines.schedules.spawn_due())
    assert spawned == [1, 1, 1, 0, 0, 0]
    runs = pipelines.runs()
    assert sorted(r["id"] for r in runs) == [f"{schedule['id']}-{n}" for n in (1, 2, 3)]
    done = pipelines.schedules.get(schedule["id"])
    assert (done["status"], done["lives"], done["has_spawned"], done["next_time"]) == (
        "expired", 0, 3, None)
    assert [entry[1] for entry in done["history"]] == [r for r in sorted(r["id"] for r in runs)]


def test_missed_times_are_made_up_by_one_run_and_pause_spawns_nothing(
        clocked: tuple[Pipelines, Clock]) -> None:  # fmt: skip
    pipelines, clock = clocked
    schedule = pipelines.deploy(_config(cronspec="0 * * * *", lives=-1, timezone="Europe/Paris"))
    clock.now += 5 * 3600  # the server was down for five hourly times
    assert pipelines.schedules.spawn_due() == 1
    assert pipelines.schedules.spawn_due() == 0, "one run, not a burst"
    later = pipelines.schedules.get(schedule["id"])
    assert later["next_time"] > clock.now and later["lives"] == -1
    pipelines.schedules.pause(schedule["id"])
    clock.now += 3 * 3600
    assert pipelines.schedules.spawn_due() == 0
    resumed = pipelines.schedules.resume(schedule["id"])
    assert resumed["status"] == "active" and resumed["next_time"] > clock.now
    assert len(pipelines.runs()) == 1


def test_a_spawn_interrupted_before_it_was_counted_is_counted_once(
        clocked: tuple[Pipelines, Clock], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    pipelines, clock = clocked
    schedule = pipelines.deploy(_config(cronspec="*/5 * * * *", lives=2))
    clock.now += 5 * 60
    schedules = pipelines.schedules
    change = schedules._change
    monkeypatch.setattr(schedules, "_change", lambda *a: (_ for _ in ()).throw(
        InvalidWork("the server was killed")))  # fmt: skip
    assert schedules.spawn_due() == 0 and len(pipelines.runs()) == 1, "run made, not counted"
    monkeypatch.setattr(schedules, "_change", change)
    assert schedules.spawn_due() == 1
    assert len(pipelines.runs()) == 1 and schedules.get(schedule["id"])["has_spawned"] == 1


@pytest.mark.parametrize("schedule, field", [
    ({"cronspec": "61 * * * *"}, "schedule.cronspec"),
    ({"cronspec": "*/5 * * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
    ({"cronspec": "*/5 * * * *", "lives": -2}, "schedule.lives"),
])  # fmt: skip
def test_a_wrong_schedule_is_refused_naming_the_field(
        clocked: tuple[Pipelines, Clock], schedule: dict[str, Any],
        field: str) -> None:  # fmt: skip
    pipelines, _ = clocked
    with pytest.raises(InvalidWork) as refused:
        pipelines.deploy(_config(**schedule))
    assert refused.value.field == field
    assert pipelines.schedules.list() == []
