"""Schedules: a configuration with ``schedule: {cronspec, lives}`` spawns a run on a
cron, ``lives`` times (-1: forever).

Cron expressions have five fields and are read by cronsim (Debian cron's semantics) in
the schedule's ``timezone`` (default UTC; an IANA name such as ``Europe/Paris``). The
server looks for due schedules when it moves pipeline runs on (every reap interval).
A spawn missed while the server was down is made up by one run, not by a burst: a
schedule due at several past times spawns once, and its next time is the first one
after now. A paused schedule spawns nothing; resumed, its next time counts from then.

Crash-safe: the run a schedule spawns has the id ``SCHEDULE-N`` (its N-th spawn), and
the schedule counts it by compare-and-set afterwards; a server killed in between finds
that run already there and only counts it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cronsim import CronSim, CronSimError

from workflow.errors import InvalidWork, TransitionConflict, WorkflowError
from workflow.pipelines.config import PipelineConfig
from workflow.store.base import Doc, document
from workflow.work import new_id

if TYPE_CHECKING:
    from workflow.pipelines.runs import Pipelines

#: The kind of the schedules in the store's documents.
SCHEDULES = "schedules"
#: Spawns kept in a schedule's history.
HISTORY = 100
TRIES = 20


def next_time(cronspec: str, timezone: str, after: float) -> float | None:
    """The first time the cron expression names after ``after`` (None: none in 50 years).

    Raises:
        InvalidWork: a bad expression or time zone, naming which.
    """
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidWork(f"schedule.timezone: {timezone!r} is not a time zone name such as "
                          "UTC or Europe/Paris", field="schedule.timezone") from None
    try:
        found = next(CronSim(cronspec, dt.datetime.fromtimestamp(after, zone)), None)
    except CronSimError as exc:
        raise InvalidWork(f"schedule.cronspec: {cronspec!r}: {exc}",
                          field="schedule.cronspec") from None  # fmt: skip
    return found.timestamp() if found is not None else None


class Schedules:
    """The schedules, over the pipeline runs they spawn."""

    def __init__(self, pipelines: Pipelines, clock: Callable[[], float] | None = None):
        self.pipelines = pipelines
        self.store = pipelines.store
        self.clock = clock or pipelines.clock

    def create(self, config: PipelineConfig, *, by: str | None = None) -> Doc:
        """A schedule for ``config`` (which has one): its first run comes at its next time."""
        assert config.schedule is not None
        now = self.clock()
        zone = config.schedule.timezone
        doc: Doc = {"id": new_id(), "version": 1, "kind": "schedule", "name": config.name,
                    "status": "active", "cronspec": config.schedule.cronspec,
                    "timezone": zone, "lives": config.schedule.lives, "has_spawned": 0,
                    "next_time": next_time(config.schedule.cronspec, zone, now),
                    "last_time": None, "creation": now, "user": by, "history": [],
                    "config": config.model_dump(mode="json", by_alias=True,
                                                exclude_none=True)}  # fmt: skip
        if not self.store.documents.put(SCHEDULES, doc, None):
            raise TransitionConflict(f"a schedule {doc['id']} exists already", field="id")
        return doc

    def list(self, *, status: list[str] | None = None, name: str | None = None,
             limit: int = 100) -> list[Doc]:  # fmt: skip
        return self.store.documents.find(SCHEDULES, status=status, name=name, limit=limit)

    def get(self, id: str) -> Doc:
        """The schedule ``id``.

        Raises:
            NotFound: no such schedule.
        """
        return document(self.store.documents, SCHEDULES, id, "schedule")

    def pause(self, id: str, *, by: str | None = None) -> Doc:
        """Spawn nothing until resumed."""
        return self._change(id, lambda doc: self._set(doc, "paused", by, ("active",)))

    def resume(self, id: str, *, by: str | None = None) -> Doc:
        """Spawn again, the next time counted from now (what was missed is not made up)."""
        def resumed(doc: Doc) -> Doc:
            doc = self._set(doc, "active", by, ("paused",))
            doc["next_time"] = next_time(doc["cronspec"], doc["timezone"], self.clock())
            return doc

        return self._change(id, resumed)

    def remove(self, id: str) -> int:
        """Delete the schedule (the runs it spawned stay); how many there were."""
        return self.store.documents.delete(SCHEDULES, [id])

    def spawn_due(self) -> int:
        """Spawn a run of every active schedule whose next time has come; how many."""
        spawned = 0
        now = self.clock()
        for doc in self.list(status=["active"], limit=10_000):
            if doc.get("next_time") is None or doc["next_time"] > now:
                continue
            try:
                self._spawn(doc, now)
                spawned += 1
            except WorkflowError:
                continue  # another server spawned it, or the store is away: next time
        return spawned

    def _spawn(self, doc: Doc, now: float) -> None:
        number = int(doc["has_spawned"]) + 1
        run_id = f"{doc['id']}-{number}"
        config = {k: v for k, v in doc["config"].items() if k != "schedule"}
        # A run of that id was spawned before a crash and not yet counted: count it now.
        with contextlib.suppress(TransitionConflict):
            self.pipelines.start(config, id=run_id, by=f"schedule {doc['id']}")

        def counted(current: Doc) -> Doc:
            if current["has_spawned"] >= number:
                return current  # counted already (another server)
            lives = current["lives"] - 1 if current["lives"] > 0 else current["lives"]
            history = [*current["history"], [dt.datetime.fromtimestamp(now, dt.UTC)
                                             .isoformat(), run_id]][-HISTORY:]  # fmt: skip
            return {**current, "has_spawned": number, "lives": lives, "last_time": now,
                    "status": "expired" if lives == 0 else current["status"],
                    "next_time": None if lives == 0 else next_time(
                        current["cronspec"], current["timezone"], now),
                    "history": history}  # fmt: skip

        self._change(doc["id"], counted)

    def _set(self, doc: Doc, status: str, by: str | None, allowed: tuple[str, ...]) -> Doc:
        if doc["status"] not in allowed:
            raise TransitionConflict(f"schedule {doc['id']} is {doc['status']}; it cannot "
                                     f"become {status}", field="status", id=doc["id"])  # fmt: skip
        return {**doc, "status": status, "history": [*doc["history"], [
            dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(), status, by]][-HISTORY:]}

    def _change(self, id: str, change: Callable[[Doc], Doc]) -> Doc:
        for _ in range(TRIES):
            doc = self.get(id)
            new: dict[str, Any] = change(dict(doc))
            if new is doc or new == doc:
                return doc
            new["version"] = doc["version"] + 1
            if self.store.documents.put(SCHEDULES, new, doc["version"]):
                return new
        raise TransitionConflict(f"schedule {id} kept changing; try again", field="id", id=id)
