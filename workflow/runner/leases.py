"""The works a runner holds, and the heartbeat that keeps their leases alive (and the
runner on the server's record: ``workflow.runner.presence``).

A work is held from its withdraw until its outcome is settled (delivered, or given up by
the outbox) or it is handed back. A heartbeat thread extends every held lease; a work
whose lease the server refuses to extend was taken away (cancelled, or the lease
expired), and its attempt is stopped.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from workflow import errors
from workflow.client import Client
from workflow.runner.options import RunnerOptions
from workflow.runner.presence import Presence
from workflow.runner.report import Reporter
from workflow.runner.slot import Slot
from workflow.wire import HeldAttempt

#: A work as the server sent it.
Doc = dict[str, Any]

#: Leases extended per request at most.
HEARTBEATS = 1000


class Leases:
    """The works a runner holds, their heartbeat, and handing them back.

    It shares the runner's ``lock``, which also guards ``running`` (the slot each
    started attempt runs in): a work taken away is marked ``taken`` and its slot looked
    up under that one lock, so its attempt is either skipped before it starts or
    aborted while it runs, never missed in between.

    Attributes:
        taken: Works the server took away while we held them (read under ``lock``).
    """

    def __init__(self, client: Client, options: RunnerOptions, reporter: Reporter,
                 lock: threading.Lock, running: dict[str, Slot],
                 stopping: threading.Event):  # fmt: skip
        self.client = client
        self.options = options
        self.report = reporter
        self.stopping = stopping
        self._lock = lock
        self._running = running
        self._held: dict[str, Doc] = {}  # claimed and not yet settled
        self.taken: set[str] = set()
        self.presence = Presence(client, options, reporter)

    def hold(self, works: list[Doc]) -> None:
        """Start keeping the leases of freshly claimed ``works`` alive."""
        with self._lock:
            for work in works:
                self._held[work["id"]] = work

    def start(self) -> None:
        """Announce the runner, and start the heartbeat thread (a daemon)."""
        self.presence.announce()
        threading.Thread(target=self._heartbeat, name="workflow-heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        period = max(0.2, min(self.options.lease / 3, 10.0))
        while True:
            # A plain sleep: after a stop, works still held (outcomes not yet delivered)
            # keep their leases at the same pace. The thread is a daemon.
            time.sleep(period)
            with self._lock:
                held = list(self._held.values())
            if self.stopping.is_set() and not held:
                return
            self.presence.keep()
            # Every held lease in one request per thousand, not one per work: a runner
            # holding a prefetched batch would otherwise send hundreds a round.
            for start in range(0, len(held), HEARTBEATS):
                chunk = held[start : start + HEARTBEATS]
                try:
                    replies = self.client.heartbeat_many(
                        [HeldAttempt(id=w["id"], attempt=w["attempt"]) for w in chunk],
                        self.options.lease)  # fmt: skip
                except errors.WorkflowError as exc:
                    self.report.problem(f"heartbeat of {len(chunk)} works failed: {exc.message}")
                    continue
                for reply in replies:
                    if reply.get("ok"):
                        continue
                    if reply.get("status_code") in (404, 409):
                        self._taken_away(reply["id"])
                    else:
                        self.report.problem(f"heartbeat of {reply['id']} failed: "
                                            f"{reply.get('message')}")  # fmt: skip

    def _taken_away(self, id: str) -> None:
        """The server no longer has us on this work (cancelled, or the lease expired)."""
        with self._lock:
            still_held = self._held.pop(id, None)
            if still_held is None:
                return  # its outcome was delivered while the heartbeat was on its way
            self.taken.add(id)  # in case its attempt has not started yet
            slot = self._running.get(id)
        if slot is not None:
            slot.abort(id)
        self.report.problem(f"{id} was taken away (cancelled or lease expired); stopped")

    def settled(self, id: str, attempt: int, note: str) -> None:
        """The outbox settled this attempt's outcome (``note`` says how): let it go."""
        with self._lock:
            self._held.pop(id, None)
            self.taken.discard(id)
        if note != "delivered":
            self.report.problem(f"{id} attempt {attempt}: {note}")

    def hand_back(self, works: list[Doc], reason: str) -> None:
        """Release ``works`` to the queue, unstarted or unfinished, for ``reason``."""
        for work in works:
            try:
                self.client.release(work["id"], work["attempt"], reason)
                self.report.problem(f"{work['id']} handed back to the queue ({reason})")
            except errors.WorkflowError as exc:
                self.report.problem(f"cannot hand back {work['id']}: {exc.message}; "
                                    "its lease will expire")  # fmt: skip
            with self._lock:
                self._held.pop(work["id"], None)
