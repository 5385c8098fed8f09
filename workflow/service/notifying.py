"""The thread that delivers notifications (``workflow.notify``): the outbox as soon as
a state change puts messages in it (``poke``) and every second for what waits to be
tried again; the pipelines' alert rules every reap interval; and, once an hour, the
delivered messages older than ``KEEP`` forgotten (their works' histories keep them)."""

from __future__ import annotations

import logging
import time

from workflow.notify import Deliverer, Watch
from workflow.service.looping import Looping

log = logging.getLogger("workflow.notify")
#: Seconds a delivered message stays in the outbox.
KEEP = 30 * 86400


class Notifier(Looping):
    """Runs ``deliverer`` when poked and every second, ``watch`` every ``interval``."""

    def __init__(self, deliverer: Deliverer, watch: Watch, interval: float):
        super().__init__("workflow-notify", 1.0, log, self._notify)
        self.deliverer, self.watch, self.interval = deliverer, watch, interval
        self._looked = self._pruned = float("-inf")

    def _notify(self) -> None:
        now = time.monotonic()
        if now - self._looked >= self.interval:
            self._looked = now
            self.watch.run()
        self.deliverer.run()
        if now - self._pruned >= 3600:
            self._pruned = now
            self.deliverer.outbox.prune(time.time() - KEEP)
