"""The runner on the server's record: it announces itself as it starts, and says goodbye
as it stops (``GET /buckets/runners`` lists it, ``workflow runners`` shows it).

Between the two, the server keeps the record fresh from the runner's own requests: its
withdraws (an idle runner's is held at the server, so it comes back at least every
half lease) and its heartbeats. A runner that cannot announce itself (the server is not
reachable yet) tries again with each heartbeat; an older server without the registry
is told nothing more.
"""

from __future__ import annotations

import os
import socket
import time

from workflow import __version__, errors
from workflow.client import Client
from workflow.runner.options import RunnerOptions
from workflow.runner.report import Reporter
from workflow.wire import RunnerInfo


class Presence:
    """Announces runner ``options.runner`` to the server, and its goodbye."""

    def __init__(self, client: Client, options: RunnerOptions, reporter: Reporter):
        self.client = client
        self.report = reporter
        self.info = RunnerInfo(
            id=options.runner, name=options.name or options.runner, host=socket.gethostname(),
            pid=os.getpid(), version=__version__, pipelines=options.pipelines or None,
            site=options.site, tags=options.tags or None, concurrency=options.concurrency,
            prefetch=options.prefetch, lease=options.lease, runs=options.function,
            start=time.time())  # fmt: skip
        self.announced = False  # or there is no registry to announce to
        self._said_why = False

    def announce(self) -> None:
        """Put the runner on record; on failure, say why (once) and try again later."""
        try:
            self.client.announce(self.info)
        except errors.ServerUnreachable as exc:
            if not self._said_why:
                self.report.problem(f"cannot announce this runner yet: {exc.message}")
                self._said_why = True
            return
        except errors.WorkflowError as exc:  # a server without the registry
            self.report.problem(f"the server keeps no record of runners: {exc.message}")
        self.announced = True

    def keep(self) -> None:
        """Announce the runner if it could not be announced so far (each heartbeat)."""
        if not self.announced:
            self.announce()

    def goodbye(self) -> None:
        """Say the runner stopped; a server that cannot be told shows it offline later."""
        if not self.announced:
            return
        try:
            self.client.goodbye(self.info.id)
        except errors.WorkflowError as exc:
            self.report.problem(f"cannot say goodbye to the server: {exc.message}")
