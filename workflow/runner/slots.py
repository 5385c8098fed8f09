"""A runner's warm children (``workflow.runner.slot``): started as attempt threads need
them, each with its own log file."""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from pathlib import Path

from workflow.errors import InvalidWork
from workflow.runner.slot import Slot


class Slots:
    """A runner's warm children: the first starts at once, in the background (while the
    first withdraw is on its way); more start as attempt threads need them."""

    def __init__(self, logs: Path | None = None) -> None:
        self._logs = logs  # where each child's log file goes (None: no files)
        self._numbers = itertools.count()
        self._idle: queue.Queue[Slot] = queue.Queue()
        self._lock = threading.Lock()
        self._every: list[Slot] = []
        self._warming = threading.Thread(target=lambda: self._idle.put(self._new()),
                                         name="workflow-warm", daemon=True)  # fmt: skip
        self._warming.start()

    def take(self) -> Slot:
        """An idle slot, or a new one."""
        self._warming.join()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._new()

    def give_back(self, slot: Slot) -> None:
        """``slot`` is idle again."""
        self._idle.put(slot)

    def loadable(self, function: str, seconds: float) -> str | None:
        """Why ``function`` cannot be called in a warm child (None: it can), checked in
        the first one within ``seconds``; a child that cannot is closed."""
        slot = self.take()
        try:
            problem = slot.loadable(function, seconds)
        finally:
            self.give_back(slot)
        if problem is not None:
            self.close_idle()
        return problem

    def check(self, function: str, seconds: float) -> None:
        """Load the runner's ``function`` in the first warm child, before anything is
        claimed: a runner that cannot call it must not take work it would fail. (The
        child loads it for the first attempt anyway; a work's own function is not
        checked: its failure is the work's.)

        Raises:
            InvalidWork: it cannot be called here (the line says why).
        """
        problem = self.loadable(function, seconds)
        if problem is not None:
            raise InvalidWork(f"FUNCTION {function} cannot run here: {problem}",
                              field="function")  # fmt: skip

    def every(self) -> list[Slot]:
        """Every slot started so far."""
        with self._lock:
            return list(self._every)

    def close_idle(self) -> None:
        """Stop the children of the idle slots (their log files go with them, and the
        runner's log folder once empty)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        if self._logs is not None:
            for folder in (self._logs, self._logs.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty

    def _new(self) -> Slot:
        log = None
        if self._logs is not None:
            with contextlib.suppress(OSError):
                self._logs.mkdir(parents=True, exist_ok=True)
                log = self._logs / f"slot-{next(self._numbers)}.log"
        slot = Slot(log)
        with self._lock:
            self._every.append(slot)
        return slot
