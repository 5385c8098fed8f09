"""The runners on record: who takes work, whether it is still there, what it holds.

A runner announces itself when it starts (``announce``) and says goodbye when it stops
(``goodbye``). In between, every request it makes (a withdraw, held or not; a
heartbeat) and every outcome of its attempts is noted in memory at no cost to the
request (``Sightings``); the server writes what it noted to the store every reap
interval (``write_runners``), adding up what several servers saw. A runner that never
announced itself (an older one) is recorded from what its withdraws say.

A runner's ``state`` is derived when it is read: ``stopped`` once it said goodbye,
``offline`` when it has not been seen for its lease (and, where other servers share
the store, the time between two of their writes), else ``online``. Runners not seen
for a day are forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflow.errors import Forbidden, NotFound
from workflow.store.base import Doc, Store
from workflow.wire import RunnerInfo, Withdraw

#: Seconds a runner no longer seen stays on record.
KEPT = 86400.0
#: Works a runner holds that are listed by id (the count is always whole).
LISTED = 20
#: A runner that never said how long its lease is.
LEASE = 60.0


@dataclass
class _Seen:
    at: float
    done: int = 0
    failed: int = 0
    want: Withdraw | None = None  # what a runner that never announced itself takes

    def new(self, runner: str) -> Doc | None:
        """How to record ``runner`` if it never announced itself: as its withdraw says."""
        want = self.want
        if want is None:
            return None
        return {"id": runner, "name": runner, "host": want.host, "pipelines": want.pipelines,
                "site": want.site, "tags": want.tags, "lease": want.lease or LEASE,
                "concurrency": 1, "announced": False}  # fmt: skip

    def added_to(self, doc: Doc) -> Doc:
        """``doc`` (a runner on record) with this added (as ``Store.touch_runner`` adds)."""
        return {**doc, "last_seen": max(float(doc.get("last_seen") or 0.0), self.at),
                "done": int(doc.get("done") or 0) + self.done,
                "failed": int(doc.get("failed") or 0) + self.failed}  # fmt: skip


class Sightings:
    """What this server saw of runners since it last wrote it to the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def saw(self, runner: str, at: float, want: Withdraw | None = None) -> None:
        """``runner`` made a request at ``at`` (its withdraw ``want`` says what it takes)."""
        self._add(runner, _Seen(at, want=want))

    def ended(self, runner: str, at: float, outcome: str) -> None:
        """An attempt of ``runner`` ended as ``outcome`` (success, failure, lost, ...);
        a lost one (its lease expired) says nothing of when the runner was seen."""
        self._add(runner, _Seen(0.0 if outcome == "lost" else at,
                                done=int(outcome == "success"),
                                failed=int(outcome in ("failure", "lost"))))  # fmt: skip

    def take(self) -> dict[str, _Seen]:
        """What was noted, forgotten here."""
        with self._lock:
            taken, self._seen = self._seen, {}
            return taken

    def forget(self, runner: str) -> None:
        """Forget what was noted of ``runner``."""
        with self._lock:
            self._seen.pop(runner, None)

    def peek(self) -> dict[str, _Seen]:
        """What was noted, left in place (a copy)."""
        with self._lock:
            return {k: _Seen(v.at, v.done, v.failed, v.want) for k, v in self._seen.items()}

    def give_back(self, taken: dict[str, _Seen]) -> None:
        """Note again what ``take`` returned and could not be written."""
        for runner, seen in taken.items():
            self._add(runner, seen)

    def _add(self, runner: str, seen: _Seen) -> None:
        with self._lock:
            mine = self._seen.setdefault(runner, seen)
            if mine is not seen:
                mine.at = max(mine.at, seen.at)
                mine.done += seen.done
                mine.failed += seen.failed
                mine.want = mine.want or seen.want


class RunnerVerbs:
    """The runner registry's verbs (``Buckets`` has them as its own)."""

    store: Store
    clock: Callable[[], float]
    sightings: Sightings
    reap_interval: float

    def announce(self, info: RunnerInfo, *, by: str | None = None) -> Doc:
        """Put runner ``info.id`` on record as it describes itself, as online, with no
        attempts counted yet (a runner that starts again under its id starts afresh);
        ``by`` is its token's name."""
        now = self.clock()
        self.sightings.forget(info.id)  # noted of an earlier life: that one has ended
        doc = {**info.model_dump(), "start": info.start or now, "by": by, "last_seen": now,
               "done": 0, "failed": 0, "stopped": None, "announced": True}  # fmt: skip
        self.store.put_runner(doc)
        return self._shown(doc, now)

    def goodbye(self, id: str, *, holder: str | None = None) -> Doc:
        """Runner ``id`` stopped: it shows ``stopped`` from now on.

        Raises:
            NotFound: no runner ``id`` on record.
            Forbidden: ``holder`` (a runner token's name) is not the token it announced
                itself with.
        """
        doc = self._record(id)
        if holder is not None and doc.get("by") not in (None, holder):
            raise Forbidden(f"runner {id} is not yours: it announced itself with another "
                            "token", field="id")  # fmt: skip
        now = self.clock()
        self.store.touch_runner(id, now, stopped=now)
        return self._shown({**doc, "stopped": now, "last_seen": now}, now)

    def runners(self) -> list[Doc]:
        """Every runner on record, online ones first, then by name: each with ``state``,
        ``last_seen``, ``done`` and ``failed`` (attempts), and ``holding`` (how many
        works it holds now) with the first of them in ``works``."""
        now = self.clock()
        docs = {doc["id"]: doc for doc in self.store.runners()}
        for runner, seen in self.sightings.peek().items():  # not yet written down
            doc = docs.get(runner) or seen.new(runner)
            if doc is not None:
                docs[runner] = seen.added_to(doc)
        shown = [self._shown(doc, now) for doc in docs.values()]
        order = {"online": 0, "offline": 1, "stopped": 2}
        return sorted(shown, key=lambda r: (order[r["state"]], str(r.get("name") or r["id"])))

    def write_runners(self) -> None:
        """Write down what was noted of runners, and forget those gone for a day (the
        server calls this every reap interval)."""
        taken = self.sightings.take()
        try:
            for runner, seen in list(taken.items()):
                self.store.touch_runner(runner, seen.at, done=seen.done, failed=seen.failed,
                                        new=seen.new(runner))  # fmt: skip
                del taken[runner]
        finally:
            self.sightings.give_back(taken)  # what could not be written: next time
        self.store.forget_runners(self.clock() - KEPT)

    def _record(self, id: str) -> Doc:
        for doc in self.store.runners():
            if doc["id"] == id:
                return doc
        raise NotFound(f"no runner {id} is on record", field="id")

    def _shown(self, doc: Doc, now: float) -> Doc:
        """``doc`` with its state and the works it holds."""
        last = float(doc.get("last_seen") or 0.0)
        # Other servers write what they saw every reap interval: a runner seen there
        # may look that much older here.
        slack = self.reap_interval if self.store.shared else 0.0
        lease = float(doc.get("lease") or LEASE)
        if doc.get("stopped"):
            state = "stopped"
        elif now - last > lease + slack:
            state = "offline"
        else:
            state = "online"
        held: Any = {"status": "running", "lease.runner": doc["id"]}
        works = self.store.work.find(held, sort=[("start", 1)], limit=LISTED)
        holding = len(works) if len(works) < LISTED else self.store.work.count(held)
        return {**doc, "state": state, "holding": holding,
                "works": [{"id": w["id"], "pipeline": w["pipeline"], "attempt": w["attempt"],
                           "start": w.get("start")} for w in works]}  # fmt: skip
