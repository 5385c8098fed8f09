"""The thread that delivers notifications (``workflow.notify``): the outbox as soon as
a state change puts messages in it (``poke``) and every second for what waits to be
tried again; the pipelines' alert rules every reap interval; and, once an hour, the
delivered messages older than ``KEEP`` forgotten (their works' histories keep them)."""

from __future__ import annotations

import logging
import threading
import time

from workflow.notify import Deliverer, Watch

log = logging.getLogger("workflow.notify")
#: Seconds a delivered message stays in the outbox.
KEEP = 30 * 86400


class Notifier:
    """Runs ``deliverer`` when poked and every second, ``watch`` every ``interval``."""

    def __init__(self, deliverer: Deliverer, watch: Watch, interval: float):
        self.deliverer, self.watch, self.interval = deliverer, watch, interval
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="workflow-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self, _: object = None) -> None:
        """Messages went into the outbox."""
        self._poked.set()

    def close(self) -> None:
        self._stopping.set()
        self._poked.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        looked = pruned = 0.0
        while not self._stopping.is_set():
            self._poked.wait(1.0)
            self._poked.clear()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            try:
                if now - looked >= self.interval:
                    looked = now
                    self.watch.run()
                self.deliverer.run()
                if now - pruned >= 3600:
                    pruned = now
                    self.deliverer.outbox.prune(time.time() - KEEP)
            except Exception:
                log.exception("delivering notifications failed; trying again")
