"""Delivering outcomes: journaled to disk, sent until the server has them.

The delivery thread takes every outcome waiting (up to ``BATCH``), appends them to the
runner's journal, sends them in one request, and appends a line saying they are settled
once the server accepted each or refused it as stale (409: the work moved on) or unknown
(404). While a request is on its way, further outcomes gather for the next one: an idle
runner sends an outcome at once, a busy one sends them by the hundred.

Outcomes handed in as riders go with the runner's next withdraw instead (one request
for both: ``take_riders``, then ``riders_answered`` or ``riders_failed``); riders not
taken within ``RIDE_WAIT`` go out on their own.

The journal (``SPOOL/<time>-<pid>.journal``, JSON lines) is locked by its runner while it
runs. A runner that starts adopts every journal whose runner is gone (its lock is free)
and delivers what it holds that is not settled; so it does with ``*.json`` files left by
older versions. Delivering an outcome twice is harmless: the server records a
completion once. Nothing is flushed to the disk itself: a journal outlives the crash of
its process, which is what it is for; outliving a crash of the machine would cost a
disk flush per batch.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from workflow import errors
from workflow.client import Client
from workflow.history import ErrorInfo
from workflow.policy import Backoff
from workflow.wire import Outcome

log = logging.getLogger("workflow.run")
#: Outcomes sent in one request at most.
BATCH = 500
#: A journal with nothing left to deliver is emptied once it is this large.
ROTATE = 4 << 20
#: Seconds an outcome waits for the withdraw it is to ride with before going alone.
RIDE_WAIT = 0.05
#: An outcome to deliver: its work's id and attempt set. The journal keeps its JSON.
Record = Outcome


class Journal:
    """An append-only file of outcomes and of which of them are settled, held under an
    exclusive ``flock`` by the runner that uses it (see ``open``)."""

    def __init__(self, fd: int, path: Path):
        self.fd = fd
        self.path = path
        self._lock = threading.Lock()  # the delivery thread and the withdrawing one write

    @classmethod
    def open(cls, path: Path, adopt: bool = False) -> Journal | None:
        """Open and lock ``path``, created when missing; with ``adopt``, an existing
        journal of another runner, or None while that runner still holds it."""
        flags = os.O_RDWR | os.O_APPEND | (0 if adopt else os.O_CREAT)
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            return None  # adopted and removed by another runner meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if adopt else 0))
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd, path)

    def pending(self) -> list[Record]:
        """The outcomes in the file that are not settled, in order."""
        outcomes: dict[tuple[str, int], Record] = {}
        with open(self.fd, "rb", closefd=False) as lines:
            lines.seek(0)
            for line in lines:
                try:
                    entry = orjson.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash while it was written
                if "settled" in entry:
                    for id, attempt in entry["settled"]:
                        outcomes.pop((id, attempt), None)
                elif (outcome := parsed(entry)) is not None:
                    outcomes[(outcome.id, outcome.attempt)] = outcome
        return list(outcomes.values())

    def append(self, records: list[Record]) -> None:
        """Write outcomes at the end, as JSON lines."""
        self._write([record.wire() for record in records])

    def settle(self, records: list[Record]) -> None:
        """Note that ``records`` need no delivery any more."""
        self._write([{"settled": [[r.id, r.attempt] for r in records]}])

    def _write(self, entries: list[dict[str, Any]]) -> None:
        """Write entries at the end (one ``write``; whole lines or, after a crash, a
        last line cut short, which ``pending`` skips)."""
        data = memoryview(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
        with self._lock:
            while data:
                data = data[os.write(self.fd, data) :]

    def empty_if_large(self) -> None:
        """Start over when the file is large (call only when nothing is pending)."""
        if os.fstat(self.fd).st_size >= ROTATE:
            os.ftruncate(self.fd, 0)

    def close(self, remove: bool) -> None:
        """Release the file, removing it first when asked."""
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


class Outbox:
    """A delivery thread over a spool directory.

    Args:
        client: Where outcomes go.
        spool: Directory of journals.
        on_done: Called with (work id, attempt, note) once an outcome is settled:
            delivered, or dropped as stale.
    """

    def __init__(self, client: Client, spool: Path,
                 on_done: Callable[[str, int, str], None]):  # fmt: skip
        self.client = client
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)
        self.on_done = on_done
        self._fresh: list[Record] = []  # handed in, not yet journaled
        self._riders: list[Record] = []  # handed in to ride a withdraw, not yet journaled
        self._held = False  # a withdraw is held at the server: nothing rides meanwhile
        self._riders_since = 0.0  # monotonic time the oldest rider came
        self._again: list[Record] = []  # journaled riders whose request failed
        self._unsettled = 0  # journaled by us, not yet settled
        self._adopted: list[tuple[Path, Journal | None, list[Record]]] = []
        self._pending = 0  # outcomes not yet settled, ours and adopted
        self._closing = False
        self._changed = threading.Condition()
        self._journal = Journal.open(spool / f"{time.time_ns()}-{os.getpid()}.journal")
        self._thread = threading.Thread(target=self._deliver_all, name="workflow-outbox",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        """Start delivering, beginning with whatever runners that are gone left behind."""
        assert self._journal is not None
        for path in sorted(self.spool.glob("*.journal")):
            if path != self._journal.path and (journal := Journal.open(path, adopt=True)):
                self._adopt(path, journal, journal.pending())
        for path in sorted(self.spool.glob("*.json")):  # written by older versions
            self._adopt(path, None, _read(path))
        self._thread.start()

    def _adopt(self, path: Path, journal: Journal | None, records: list[Record]) -> None:
        self._adopted.append((path, journal, records))
        self._pending += len(records)

    def put_many(self, records: list[Record], ride: bool = False) -> None:
        """Queue outcomes for delivery (they are journaled before they are sent); with
        ``ride``, for the next withdraw to take (``take_riders``)."""
        if not records:
            return
        with self._changed:
            self._pending += len(records)
            if not ride or self._held:  # the withdraw is held at the server: no waiting
                self._fresh.extend(records)
                self._changed.notify_all()
                return
            # No wake-up for riders (a thread switch per work): the delivery thread
            # looks for riders left behind every RIDE_WAIT anyway.
            if not self._riders:
                self._riders_since = time.monotonic()
            self._riders.extend(records)

    def take_riders(self, hold: bool = False) -> list[Record]:
        """The outcomes waiting to ride a withdraw (up to ``BATCH``), journaled now: send
        them, then call ``riders_answered`` or ``riders_failed``. With ``hold`` and none
        waiting, the withdraw is to be held at the server: until ``held_ended``,
        outcomes go out at once rather than wait for it."""
        with self._changed:
            self._held = hold and not self._riders
            records, self._riders = self._riders[:BATCH], self._riders[BATCH:]
            if records:
                assert self._journal is not None
                self._journal.append(records)
                self._unsettled += len(records)
        return records

    @property
    def holding(self) -> bool:
        """Whether a withdraw is held at the server now (``take_riders`` with ``hold``)."""
        return self._held

    def held_ended(self) -> None:
        """The withdraw held at the server has returned: outcomes may ride again."""
        with self._changed:
            self._held = False

    def riders_answered(self, records: list[Record], replies: list[dict[str, Any]]) -> None:
        """The server's replies to riders: settle them; the rest go out on their own."""
        assert self._journal is not None
        again = self._settle(records, replies, self._journal.settle)
        with self._changed:
            self._again.extend(again)
            self._done(len(records) - len(again))

    def riders_failed(self, records: list[Record]) -> None:
        """The request carrying riders failed: they go out on their own."""
        with self._changed:
            self._again.extend(records)
            self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is settled; False if ``timeout`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        """Stop the thread; what is not delivered yet stays in the journal."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=5)
        assert self._journal is not None
        with self._changed:
            fresh, self._fresh, self._riders = [*self._fresh, *self._riders], [], []
            if fresh:
                self._journal.append(fresh)
                self._unsettled += len(fresh)
            if self._thread.is_alive():
                return  # still sending: the file stays open until this process ends
            # A journal with nothing to deliver goes; one still needed stays for the next.
            self._journal.close(remove=not self._unsettled)
            self._journal = None

    def _deliver_all(self) -> None:
        for path, adopted, records in self._adopted:
            self._deliver_adopted(path, adopted, records)
        while (fresh := self._next()) is not None:
            journal = self._journal
            assert journal is not None
            self._deliver(fresh, journal.settle)
            with self._changed:
                self._done(len(fresh))

    def _next(self) -> list[Record] | None:
        """The next outcomes to send, journaled; None once closing."""
        with self._changed:
            while not self._closing:
                if self._riders and time.monotonic() - self._riders_since >= RIDE_WAIT:
                    self._fresh.extend(self._riders)  # no withdraw took them
                    self._riders = []
                if self._again:  # journaled already
                    records, self._again = self._again[:BATCH], self._again[BATCH:]
                    return records
                if self._fresh:
                    records, self._fresh = self._fresh[:BATCH], self._fresh[BATCH:]
                    assert self._journal is not None
                    self._journal.append(records)
                    self._unsettled += len(records)
                    return records
                self._changed.wait(RIDE_WAIT)
            return None

    def _done(self, settled: int) -> None:
        """Count ``settled`` of our journaled outcomes as settled (holding the lock)."""
        self._unsettled -= settled
        if not self._unsettled and self._journal is not None:
            self._journal.empty_if_large()
        self._pending -= settled
        self._changed.notify_all()

    def _deliver_adopted(self, path: Path, journal: Journal | None,
                         records: list[Record]) -> None:  # fmt: skip
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            self._deliver(batch, journal.settle if journal else lambda _: None)
            with self._changed:
                self._pending -= len(batch)
                self._changed.notify_all()
        if journal is None:
            path.unlink(missing_ok=True)
        else:
            journal.close(remove=True)

    def _deliver(self, records: list[Record], settle: Callable[[list[Record]], None]) -> None:
        """Send ``records`` until each is settled, noting each settled batch."""
        backoff = Backoff(first=0.5, factor=2.0, cap=30.0)
        while records:
            try:
                replies = self._replies(records)
            except Exception as exc:  # noqa: BLE001 - unreachable, unavailable, closing
                reason = exc.message if isinstance(exc, errors.WorkflowError) else str(exc)
                delay = backoff.next()
                log.warning("cannot deliver %d outcomes yet (%s); retrying in %.0f s",
                            len(records), reason, delay)  # fmt: skip
                time.sleep(delay)
                continue
            again = self._settle(records, replies, settle)
            if len(again) == len(records):
                time.sleep(backoff.next())
            records = again

    def _replies(self, records: list[Record]) -> list[dict[str, Any]]:
        """The server's reply to each of ``records``. When it refuses the request as a
        whole (one outcome it could not even read: 413, 422), each outcome goes again
        alone, so one bad outcome never holds the others back; one refused alone is
        then reported failed (``_settle``).

        Raises:
            Exception: the server could not be reached, or answered otherwise.
        """
        try:
            return self.client.complete_many(records)
        except errors.WorkflowError as exc:
            if exc.status_code not in (413, 422):
                raise
            if len(records) > 1:
                return [reply for record in records for reply in self._replies([record])]
            return [{"id": records[0].id, "ok": False, "status_code": exc.status_code,
                     **exc.to_dict()}]  # fmt: skip

    def _settle(self, records: list[Record], replies: list[dict[str, Any]],
                settle: Callable[[list[Record]], None]) -> list[Record]:  # fmt: skip
        """Settle what the server's replies settle; return what must be sent again."""
        again: list[Record] = []
        settled: list[tuple[Record, str]] = []
        for record, reply in zip(records, replies, strict=True):
            code = reply.get("status_code")
            if reply.get("ok") or code in (404, 409):
                settled.append((record, "delivered" if reply.get("ok") else
                                f"dropped as stale: {reply.get('message')}"))  # fmt: skip
            elif code in (413, 422):
                # The server will never take this outcome: report the attempt failed.
                error = ErrorInfo(type=reply.get("error"),
                                  message=f"outcome refused: {reply.get('message')}")
                again.append(Outcome(id=record.id, attempt=record.attempt, status="failure",
                                     started=record.started, stop=record.stop,
                                     error=error))  # fmt: skip
            else:
                again.append(record)
        if settled:
            settle([record for record, _ in settled])
            for record, note in settled:
                self.on_done(record.id, record.attempt, note)
        return again


def _read(path: Path) -> list[Record]:
    """The outcomes in an older runner's spool file (a list, or one record)."""
    try:
        content = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return []  # delivered and removed by another runner sharing the spool
    entries = content if isinstance(content, list) else [content]
    return [outcome for entry in entries if (outcome := parsed(entry)) is not None]


def parsed(entry: Any) -> Outcome | None:
    """A journaled outcome; older runners wrote ``{"id", "attempt", "body", "reason"}``.
    None for a line that is no outcome (written by hand, or by a version that knew
    fields this one does not)."""
    if isinstance(entry, dict) and isinstance(entry.get("body"), dict):
        entry = {"id": entry.get("id"), "attempt": entry.get("attempt"), **entry["body"],
                 **({"reason": entry["reason"]} if entry.get("reason") else {})}  # fmt: skip
    try:
        return Outcome.model_validate(entry)
    except ValidationError:
        log.warning("skipping a journal line that is no outcome: %.200s", entry)
        return None
