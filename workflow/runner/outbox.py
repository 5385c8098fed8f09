"""Delivering outcomes: spooled to disk, sent until the server has them.

The delivery thread takes every outcome waiting (up to ``BATCH``), writes them to one
spool file, sends them in one request, and removes the file once the server accepted
each outcome or refused it as stale (409: the work moved on) or unknown (404). While a
request is on its way, further outcomes gather for the next one: an idle runner sends
an outcome at once, a busy one sends them by the hundred.

A runner killed with outcomes in the spool delivers them when it starts again; so does
any runner sharing the spool. Delivering an outcome twice is harmless: the server
records a completion once.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from workflow import errors
from workflow.client import Client
from workflow.runner.outcome import Outcome

log = logging.getLogger("workflow.run")
#: Outcomes sent in one request at most.
BATCH = 500
#: A spooled outcome: {"id", "attempt", "body": the completion fields, "reason"}.
Record = dict[str, Any]


def record(id: str, attempt: int, outcome: Outcome) -> Record:
    """What the spool keeps of one outcome."""
    return {"id": id, "attempt": attempt, "body": outcome.body(),
            "reason": outcome.extra.get("reason")}  # fmt: skip


class Outbox:
    """A delivery thread over a spool directory.

    Args:
        client: Where outcomes go.
        spool: Directory holding outcomes not yet delivered.
        on_done: Called with (work id, attempt, note) once an outcome is settled:
            delivered, or dropped as stale.
    """

    def __init__(self, client: Client, spool: Path,
                 on_done: Callable[[str, int, str], None]):  # fmt: skip
        self.client = client
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)
        self.on_done = on_done
        self._fresh: list[Record] = []  # handed in, not yet spooled
        self._files: list[tuple[Path, list[Record]]] = []  # spooled by an earlier runner
        self._pending = 0  # outcomes not yet settled
        self._closing = False
        self._changed = threading.Condition()
        self._prefix = f"{time.time_ns()}-{os.getpid()}"
        self._serial = itertools.count()  # next() on a count is atomic: no lock needed
        self._thread = threading.Thread(target=self._deliver_all, name="workflow-outbox",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        """Start delivering, beginning with whatever an earlier runner left spooled."""
        for path in sorted(self.spool.glob("*.json")):
            records = _read(path)
            if records is not None:
                self._files.append((path, records))
                self._pending += len(records)
        self._thread.start()

    def put_many(self, records: list[Record]) -> None:
        """Queue outcomes for delivery (they are spooled before they are sent)."""
        if not records:
            return
        with self._changed:
            self._fresh.extend(records)
            self._pending += len(records)
            self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is settled; False if ``timeout`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        """Stop the thread; what is not delivered yet stays spooled."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=5)
        with self._changed:
            fresh, self._fresh = self._fresh, []
        if fresh:
            self._write(fresh)

    def _deliver_all(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closing or self._fresh or self._files)
                if self._closing:
                    return
                if self._files:
                    path, records = self._files.pop(0)
                else:
                    records, self._fresh = self._fresh[:BATCH], self._fresh[BATCH:]
                    path = None
            if path is None:
                path = self._write(records)
            try:
                self._deliver(records)
                path.unlink(missing_ok=True)
            finally:
                with self._changed:
                    self._pending -= len(records)
                    self._changed.notify_all()

    def _write(self, records: list[Record]) -> Path:
        # No fsync: the file must outlive a crash of this process, which the page cache
        # does; surviving a crash of the machine would cost a disk flush per batch.
        path = self.spool / f"{self._prefix}-{next(self._serial):06d}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(records))
        os.replace(temporary, path)  # atomic: a crash leaves the whole file or none
        return path

    def _deliver(self, records: list[Record]) -> None:
        """Send ``records`` until each is settled."""
        delay = 0.5
        while records:
            try:
                replies = self.client.complete_many([_item(record) for record in records])
            except Exception as exc:  # noqa: BLE001 - unreachable, unavailable, closing
                reason = exc.message if isinstance(exc, errors.WorkflowError) else str(exc)
                log.warning("cannot deliver %d outcomes yet (%s); retrying in %.0f s",
                            len(records), reason, delay)  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            again: list[Record] = []
            for record, reply in zip(records, replies, strict=True):
                code = reply.get("status_code")
                if reply.get("ok") or code in (404, 409):
                    note = "delivered" if reply.get("ok") else (
                        f"dropped as stale: {reply.get('message')}")  # fmt: skip
                    self.on_done(record["id"], record["attempt"], note)
                elif code in (413, 422):
                    # The server will never take this outcome: report the attempt failed.
                    body = record["body"]
                    record["body"] = {"status": "failure", "started": body.get("started"),
                                      "stop": body.get("stop"), "error": {
                                          "type": reply.get("error"),
                                          "message": f"outcome refused: {reply.get('message')}"}}
                    again.append(record)
                else:
                    again.append(record)
            if len(again) == len(records):
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            records = again


def _read(path: Path) -> list[Record] | None:
    """The outcomes in a spool file (a list, or one record as older runners wrote)."""
    try:
        content = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # delivered and removed by another runner sharing the spool
    return content if isinstance(content, list) else [content]


def _item(record: Record) -> dict[str, Any]:
    item = {"id": record["id"], "attempt": record["attempt"], **record["body"]}
    if record.get("reason"):
        item["reason"] = record["reason"]
    return item
