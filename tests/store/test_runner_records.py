"""The runners on record, on each backend: what two servers sharing a store saw adds
up, a goodbye sticks, and runners gone for a day are forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import mongo_store

from workflow.buckets import Buckets
from workflow.store import Store, open_store
from workflow.wire import RunnerInfo, Withdraw


@pytest.fixture(params=["sqlite", "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = (open_store(f"sqlite:///{tmp_path / 'runners.db'}") if request.param == "sqlite"
              else mongo_store())  # fmt: skip
    yield opened
    opened.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _one(buckets: Buckets, id: str) -> dict[str, Any]:
    (found,) = [r for r in buckets.runners() if r["id"] == id]
    return found


def test_what_two_servers_saw_adds_up_and_a_goodbye_sticks(store: Store) -> None:
    clock = Clock()
    first, second = Buckets(store, clock=clock), Buckets(store, clock=clock)
    first.announce(RunnerInfo(id="r1", pipelines=["p"], lease=30))
    for server, outcome in ((first, "success"), (second, "success"), (second, "failure"),
                            (second, "lost")):  # fmt: skip
        server.sightings.ended("r1", clock.now, outcome)
    clock.now += 10
    second.sightings.saw("r1", clock.now)
    first.write_runners()
    second.write_runners()
    seen = _one(first, "r1")
    assert (seen["done"], seen["failed"], seen["last_seen"]) == (2, 2, clock.now)
    first.goodbye("r1")
    second.sightings.saw("r1", clock.now + 1)  # a heartbeat on its way as it stopped
    second.write_runners()
    assert _one(second, "r1")["state"] == "stopped"


def test_runners_gone_for_a_day_are_forgotten_and_one_never_announced_is_recorded(
        store: Store) -> None:  # fmt: skip
    clock = Clock()
    buckets = Buckets(store, clock=clock)
    buckets.announce(RunnerInfo(id="old", lease=60))
    buckets.withdraw(Withdraw(pipelines=["p"], runner="unannounced", host="h"))
    buckets.write_runners()
    assert {r["id"] for r in store.runners()} == {"old", "unannounced"}
    clock.now += 61 + buckets.reap_interval  # its lease, and a shared store's slack
    assert _one(buckets, "old")["state"] == "offline"
    clock.now += 86_400
    buckets.sightings.saw("unannounced", clock.now)
    buckets.write_runners()
    assert [r["id"] for r in store.runners()] == ["unannounced"]
