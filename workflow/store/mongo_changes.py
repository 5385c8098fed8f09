"""Following a MongoDB database's changes, so that the servers sharing it wake each
other's held requests (``workflow.service.waiting``): ``MongoStore.follow``.

One change stream on the database (pymongo's ``Database.watch``), read by one daemon
thread. The database itself filters the events (``MATCH``): only those that may make a
work claimable, or that finish one, reach the servers. A work deposited or queued again
(inserted, or replaced, as ``queued``), a pipeline resumed, a work inserted into the
results (the upsert of a finish's move). The high-rate writes never leave the
database: claims (an update to ``running``), heartbeats and lease renewals (a replace
that stays ``running``), the finished-per-minute counts. Of what passes, only the few
fields ``heard`` reads cross the wire (``KEPT``), never a deposit's parameters.

A server hears its own changes too, after its own verbs have told it: one more pass of
its waiting room, which finds nothing to claim when the first already served them.

Change streams need a replica set or a sharded cluster. A stream that fails is opened
again where it left off (its resume token: nothing in between is missed); after
``RETRIES`` failures in a row the thread gives up and says so (``on_lost``), and the
server looks every 100 ms instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from pymongo.errors import PyMongoError

from workflow.policy import Backoff

log = logging.getLogger(__name__)
#: Change events that may make a work claimable, or that finish one.
MATCH = {"$or": [
    {"ns.coll": "work", "operationType": {"$in": ["insert", "replace"]},
     "fullDocument.status": "queued"},
    {"ns.coll": "work", "operationType": "update",
     "updateDescription.updatedFields.status": "queued"},
    {"ns.coll": "pipelines", "operationType": {"$in": ["insert", "replace"]},
     "fullDocument.settings.paused": False},
    {"ns.coll": "pipelines", "operationType": "update"},
    {"ns.coll": "results", "operationType": "insert"},
]}  # fmt: skip
#: What ``heard`` reads of an event (its ``_id``, the resume token, is always kept).
KEPT = {"operationType": 1, "ns.coll": 1, "documentKey": 1, "fullDocument.not_before": 1,
        "updateDescription.updatedFields.not_before": 1}  # fmt: skip
#: Server error codes meaning the deployment has no change streams (a standalone mongod).
NO_CHANGE_STREAMS = {40573}
#: Failures in a row after which the thread gives up and the server polls.
RETRIES = 5
#: Seconds before opening a failed stream again; doubled after each failure in a row.
PAUSE = 0.5
#: Seconds the database holds one read of an idle stream: how soon the thread sees stop.
AWAIT = 0.5

Claimable = Callable[[float | None], None]
Finished = Callable[[str], None]
#: Opens the change stream after a resume token (None: from now on).
Open = Callable[[Any], Any]


def heard(change: Mapping[str, Any], on_claimable: Claimable, on_finished: Finished,
          now: float) -> None:  # fmt: skip
    """Pass on one change event that ``MATCH`` let through.

    Args:
        change: The event.
        on_claimable: Told that a work may be claimable, now (None) or from a unix
            time still to come (its ``not_before``).
        on_finished: Told the id of a work that has finished.
        now: The unix time now.
    """
    where = (change.get("ns") or {}).get("coll")
    if where == "results":
        on_finished(str(change["documentKey"]["_id"]))
    elif where in ("work", "pipelines"):
        fields = change.get("fullDocument") or (change.get("updateDescription") or {}).get(
            "updatedFields") or {}  # fmt: skip
        due = fields.get("not_before")
        later = isinstance(due, int | float) and not isinstance(due, bool) and due > now
        on_claimable(due if later else None)


def watch(db: Any, after: Any) -> Any:
    """The change stream of ``db`` (a pymongo ``Database``) with the events ``heard``
    passes on, after the resume token ``after`` (None: from now on)."""
    return db.watch([{"$match": MATCH}, {"$project": KEPT}], start_after=after,
                    max_await_time_ms=int(AWAIT * 1000))  # fmt: skip


class StreamFollowing:
    """A daemon thread passing on a change stream's events (see the module docstring).

    The first stream opens in the constructor, so that a deployment without change
    streams fails there, in the caller.

    Args:
        open: Opens the change stream after a resume token (None: from now on).
        on_claimable: See ``heard``; called from the thread.
        on_finished: See ``heard``; called from the thread.
        on_lost: Called once, from the thread, when it gives up: changes go unheard
            from then on, so the caller must look for itself.
        retries: Failures in a row before it gives up.
        pause: Seconds before the first attempt to open the stream again.

    Raises:
        PyMongoError: the first stream could not be opened.
    """

    def __init__(self, open: Open, on_claimable: Claimable, on_finished: Finished,
                 on_lost: Callable[[], None], *, retries: int = RETRIES,
                 pause: float = PAUSE):  # fmt: skip
        self._open = open
        self._on_claimable, self._on_finished, self._on_lost = on_claimable, on_finished, on_lost
        self._retries = retries
        self._failures = 0  # in a row: a read that works sets it back to 0
        self._backoff = Backoff(first=pause, factor=2.0)  # reset with the failures
        self._stop = threading.Event()
        self._first = open(None)
        #: Where the stream has got to; a stream opened again starts after it.
        self.token: Any = self._first.resume_token
        self._thread = threading.Thread(target=self._run, name="workflow-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following: the thread closes the stream and ends (within ``AWAIT`` s)."""
        self._stop.set()
        self._thread.join(timeout=AWAIT * 4)

    def _run(self) -> None:
        stream, self._first = self._first, None
        while True:
            why: Exception | None = None
            try:
                stream = stream or self._open(self.token)
                self._read(stream)
            except PyMongoError as exc:
                why = exc
            finally:
                if stream is not None:
                    with suppress(PyMongoError):
                        stream.close()
                stream = None
            if self._stop.is_set() or not self._again(why):
                return

    def _read(self, stream: Any) -> None:
        """Pass on the events of ``stream`` until stopped, or until the stream ends (the
        database invalidated it: dropped)."""
        while not self._stop.is_set() and stream.alive:
            change = stream.try_next()  # waits up to AWAIT for an event
            self.token = stream.resume_token  # moves on while idle too
            if self._failures:
                self._failures = 0
                self._backoff.reset()
            if change is not None:
                heard(change, self._on_claimable, self._on_finished, time.time())

    def _again(self, why: Exception | None) -> bool:
        """After the stream failed (``why``) or ended: whether to open it again (after a
        pause, doubled with each failure in a row), or to give up."""
        self._failures += 1
        what = f"failed ({why})" if why else "ended"
        if self._failures > self._retries:
            log.warning("MongoDB change stream %s %d times in a row; giving up", what,
                        self._failures)  # fmt: skip
            self._on_lost()
            return False
        pause = self._backoff.next()
        log.warning("MongoDB change stream %s; opening it again in %.1f s", what, pause)
        return not self._stop.wait(pause)
