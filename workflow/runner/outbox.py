"""Delivering outcomes: spooled to disk first, sent until the server has them.

An outcome is written to the spool directory before it is sent and removed once the
server accepted it or refused it as stale (409: the work moved on) or unknown (404).
A runner killed between finishing a work and reporting it delivers the spooled outcome
when it starts again; so may any runner sharing the spool. Delivering one outcome twice
is harmless: the server records a completion once.
"""

from __future__ import annotations

import logging
import os
import queue
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
#: Seconds the delivery waits for more outcomes to send along with the first.
LINGER = 0.01


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
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._deliver_all, name="workflow-outbox",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        """Start delivering, beginning with whatever an earlier runner left spooled."""
        for path in sorted(self.spool.glob("*.json")):
            self._enqueue(path)
        self._thread.start()

    def put(self, id: str, attempt: int, outcome: Outcome) -> None:
        """Spool one outcome and queue it for delivery."""
        path = self.spool / f"{id}.{attempt}.json"
        temporary = path.with_suffix(".tmp")
        record = {"id": id, "attempt": attempt, "body": outcome.body(),
                  "reason": outcome.extra.get("reason")}  # fmt: skip
        # No fsync: the file must outlive a crash of this process, which the page cache
        # does; surviving a crash of the machine would cost a disk flush per work.
        with open(temporary, "wb") as out:
            out.write(orjson.dumps(record))
        os.replace(temporary, path)  # atomic: a crash leaves the whole file or none
        self._enqueue(path)

    def _enqueue(self, path: Path) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(path)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is settled; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the thread (outcomes not yet delivered stay spooled)."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _deliver_all(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            until = time.monotonic() + LINGER
            while len(batch) < BATCH:  # what else comes within LINGER goes along
                try:
                    path = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if path is None:
                    self._queue.put(None)
                    break
                batch.append(path)
            try:
                self._deliver(batch)
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _deliver(self, paths: list[Path]) -> None:
        records: list[tuple[Path, dict[str, Any]]] = []
        for path in paths:
            try:
                records.append((path, orjson.loads(path.read_bytes())))
            except (OSError, ValueError):
                continue  # delivered and removed by another runner sharing the spool
        delay = 0.5
        while records:
            try:
                replies = self.client.complete_many([_item(record) for _, record in records])
            except Exception as exc:  # noqa: BLE001 - unreachable, unavailable, closing
                reason = exc.message if isinstance(exc, errors.WorkflowError) else str(exc)
                log.warning("cannot deliver %d outcomes yet (%s); retrying in %.0f s",
                            len(records), reason, delay)  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            again: list[tuple[Path, dict[str, Any]]] = []
            for (path, record), reply in zip(records, replies, strict=True):
                code = reply.get("status_code")
                if reply.get("ok") or code in (404, 409):
                    note = "delivered" if reply.get("ok") else (
                        f"dropped as stale: {reply.get('message')}")  # fmt: skip
                    path.unlink(missing_ok=True)
                    self.on_done(record["id"], record["attempt"], note)
                elif code in (413, 422):
                    # The server will never take this outcome: report the attempt failed.
                    body = record["body"]
                    record["body"] = {"status": "failure", "started": body.get("started"),
                                      "stop": body.get("stop"), "error": {
                                          "type": reply.get("error"),
                                          "message": f"outcome refused: {reply.get('message')}"}}
                    again.append((path, record))
                else:
                    again.append((path, record))
            if len(again) == len(records):
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            records = again


def _item(record: dict[str, Any]) -> dict[str, Any]:
    item = {"id": record["id"], "attempt": record["attempt"], **record["body"]}
    if record.get("reason"):
        item["reason"] = record["reason"]
    return item
