"""The thread that spawns the runs of due schedules and moves pipeline runs on
(``workflow.pipelines``): as soon as a work finishes on this server (``poke``), and
every reap interval for what other servers finished and for the schedules."""

from __future__ import annotations

import logging
import threading

from workflow.pipelines import Pipelines

log = logging.getLogger("workflow.pipelines")


class Advancer:
    """Calls ``pipelines.advance_all`` when poked, and every ``interval`` seconds."""

    def __init__(self, pipelines: Pipelines, interval: float):
        self.pipelines = pipelines
        self.interval = interval
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="workflow-pipelines",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """A work finished: a run may move on."""
        self._poked.set()

    def close(self) -> None:
        self._stopping.set()
        self._poked.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._poked.wait(self.interval)
            self._poked.clear()
            if self._stopping.is_set():
                return
            try:
                self.pipelines.schedules.spawn_due()
                self.pipelines.advance_all()
            except Exception:
                log.exception("moving pipeline runs on failed; trying again")
