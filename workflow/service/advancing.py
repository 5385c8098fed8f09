"""The thread that spawns the runs of due schedules and moves pipeline runs on
(``workflow.pipelines``): as soon as a work finishes on this server (``poke``), and
every reap interval for what other servers finished and for the schedules."""

from __future__ import annotations

import logging

from workflow.pipelines import Pipelines
from workflow.service.looping import Looping

log = logging.getLogger("workflow.pipelines")


class Advancer(Looping):
    """Calls ``pipelines.advance_all`` when poked, and every ``interval`` seconds."""

    def __init__(self, pipelines: Pipelines, interval: float):
        super().__init__("workflow-pipelines", interval, log, self._advance)
        self.pipelines = pipelines

    def _advance(self) -> None:
        self.pipelines.schedules.spawn_due()
        self.pipelines.advance_all()
