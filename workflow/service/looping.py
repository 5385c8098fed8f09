"""A server's background loop: a daemon thread that takes a step when poked and every
``every`` seconds until closed; an error in a step is logged, and the loop goes on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Looping:
    """Calls ``step`` when poked and every ``every`` seconds (see the module)."""

    def __init__(self, name: str, every: float, log: logging.Logger, step: Callable[[], None]):
        self.every, self.log, self.step = every, log, step
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self, _: object = None) -> None:
        """Something happened that the next step should see now."""
        self._poked.set()

    def close(self) -> None:
        self._stopping.set()
        self._poked.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._poked.wait(self.every)
            self._poked.clear()
            if self._stopping.is_set():
                return
            try:
                self.step()
            except Exception:
                self.log.exception("%s failed; trying again", self._thread.name)
