"""Delivering the outbox: each target's messages in the order they were written, with
backoff, and each delivery (or the giving up on one) written into its work's history.

A message goes ``pending`` → ``sending`` (taken, by compare-and-set, for ``lease``
seconds: a server that dies while sending leaves it to be sent again once the lease
runs out, with the same key) → ``recording`` (``outcome`` ``delivered`` or ``failed``)
→ ``done`` once the history holds it. While a target's oldest message waits to be
tried again, its later ones wait behind it: a receiver gets them in order.

The history entry is appended by the store in one step that changes nothing else. A
write of the whole work that read it before (a runner's outcome, an operator's change)
could still put back the history without it, so the entry is looked for again
``VERIFY`` seconds later and appended again if it went missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3

from workflow.history import DeliveryEntry
from workflow.notify.render import Message
from workflow.notify.targets import Sent
from workflow.store.base import Doc, Store

log = logging.getLogger("workflow.notify")
#: Seconds after an entry was appended to a work's history that it is looked for again.
VERIFY = 10.0
#: Tries to find a work to record a delivery in (it may be moving to the results).
_LOOKS = 6


class Deliverer:
    """Sends what the outbox holds (see the module).

    Args:
        store: The store whose outbox and works these are.
        targets: The configured targets by name (``workflow.notify.targets``).
        public_url: The web UI's address, for links (None: messages carry none).
        tries: Tries before a message is given up on (a final refusal ends it at once).
        longest: The longest wait between two tries, in seconds (they double from 1).
        lease: Seconds a message being sent is held for this server (longer than any
            target's timeout).
        senders: Targets sent to at once, each in a thread of its own.
    """

    def __init__(self, store: Store, targets: Mapping[str, Any], *, public_url: str | None,
                 tries: int = 20, longest: float = 300.0, lease: float = 150.0,
                 senders: int = 8, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store, self.outbox = store, store.outbox
        self.targets = dict(targets)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.tries, self.longest, self.lease, self.clock = tries, longest, lease, clock
        self.senders = senders
        self.http = urllib3.PoolManager(maxsize=8)
        self.started = clock()

    def run(self) -> int:
        """One pass: send every target's due messages, then record what was settled;
        return how many messages moved on."""
        heads = [head for head in self.outbox.heads() if self._due(head)]
        moved = 0
        if len(heads) == 1 or self.senders == 1:
            moved += sum(map(self._drain, heads))
        elif heads:
            with ThreadPoolExecutor(min(self.senders, len(heads)), "notify") as pool:
                moved += sum(pool.map(self._drain, heads))
        return moved + self.record()

    def _due(self, doc: Doc) -> bool:
        now = self.clock()
        if doc["state"] == "sending":  # its server died mid-send, or sends still
            # (A store no other server shares: taken before this one started, it died.)
            mine = not self.store.shared and float(doc.get("taken") or 0) < self.started
            return mine or float(doc.get("lease") or 0) <= now
        return float(doc["due"]) <= now

    def _drain(self, head: Doc) -> int:
        """Send ``head`` and the messages behind it to its target while they go."""
        sent = 0
        doc: Doc | None = head
        while doc is not None and self._due(doc) and self.deliver(doc):
            sent += 1
            doc = next(iter(self.outbox.heads(head["target"])), None)
        return sent

    def link(self, doc: Doc) -> str | None:
        """The web UI page a message is about."""
        if self.public_url is None:
            return None
        if doc.get("work") is not None:
            return f"{self.public_url}/#/work/{doc['work']}"
        return f"{self.public_url}/#/buckets"

    def deliver(self, doc: Doc) -> bool:
        """Try ``doc`` once; True when it is settled (delivered, or given up on)."""
        now = self.clock()
        taken = {**doc, "state": "sending", "taken": now, "lease": now + self.lease,
                 "version": doc["version"] + 1}  # fmt: skip
        if not self.outbox.put(taken, doc["version"]):
            return False  # another server took it
        sent = self.send(doc)
        tries, now = int(doc.get("tries") or 0) + 1, self.clock()
        settled = sent.ok or sent.final or tries >= self.tries
        if settled:
            new = {**taken, "state": "recording", "outcome": "delivered" if sent.ok else "failed",
                   "settled": now, "due": now}  # fmt: skip
        else:
            wait = sent.retry_after or min(self.longest, 2.0 ** (tries - 1))
            new = {**taken, "state": "pending", "due": now + wait}
        new.update(tries=tries, version=taken["version"] + 1, lease=None,
                   detail=None if sent.ok else sent.detail)  # fmt: skip
        if not self.outbox.put(new, taken["version"]):
            log.warning("message %s was taken over while being sent", doc["key"])
        level = logging.INFO if sent.ok else logging.WARNING
        log.log(level, "%s to %s: %s", doc["idempotency"], doc["target"],
                "delivered" if sent.ok else f"try {tries}: {sent.detail}")  # fmt: skip
        return settled

    def send(self, doc: Doc) -> Sent:
        """Send ``doc`` to its target once."""
        target = self.targets.get(doc["target"])
        if target is None:
            return Sent(False, f"no target {doc['target']!r} is configured on this server",
                        final=True)  # fmt: skip
        try:
            sent: Sent = target.send(Message(doc, self.link(doc)), self.http)
        except Exception as exc:  # a target's bug must not stop the others
            log.exception("sending %s to %s failed", doc["key"], doc["target"])
            return Sent(False, f"{type(exc).__name__}: {exc}")
        return sent

    def record(self) -> int:
        """Write the settled messages into their works' histories; return how many
        were written (or found there)."""
        moved = 0
        for doc in self.outbox.recording(self.clock()):
            if self._record(doc):
                moved += 1
        return moved

    def _record(self, doc: Doc) -> bool:
        now, work = self.clock(), doc.get("work")
        # Taken first (its next look set), by compare-and-set: one server records it.
        held = {**doc, "due": now + VERIFY, "version": doc["version"] + 1}
        if not self.outbox.put(held, doc["version"]):
            return False

        def then(**update: Any) -> bool:
            return self.outbox.put({**held, **update, "version": held["version"] + 1},
                                   held["version"])  # fmt: skip

        if work is None:  # a rule's: no work to tell
            return then(state="done")
        entry = DeliveryEntry(at=doc["settled"], key=doc["idempotency"], target=doc["target"],
                              event=doc["event"], attempt=doc.get("attempt"),
                              outcome=doc["outcome"], tries=doc["tries"],
                              detail=doc.get("detail")).model_dump(mode="json")  # fmt: skip
        looks = int(doc.get("looks") or 0) + 1
        if doc.get("recorded"):
            stored = self.store.results.get(work) or self.store.work.get(work)
            if stored is None or any(_same(entry, e) for e in stored.get("history") or []):
                return then(state="done")
        appended = self.store.results.append(work, [entry]) or self.store.work.append(work, [entry])
        if appended:
            return then(recorded=now, looks=looks)
        # Not found (moving to the results, or deleted): looked for a few times more.
        return then(looks=looks, **({"state": "done"} if looks >= _LOOKS else {})) and False


def _same(entry: Doc, other: Any) -> bool:
    return (isinstance(other, dict) and other.get("kind") == "delivery"
            and other.get("key") == entry["key"]
            and other.get("target") == entry["target"])  # fmt: skip
