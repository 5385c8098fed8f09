"""What a runner says: one readable line per work, or JSON lines for machines."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from workflow.runner.outcome import Outcome
from workflow.work import Work

_STYLE = {"success": "green", "failure": "red", "retry": "yellow"}


class Reporter:
    """Writes one line per finished attempt and per problem, to stderr.

    Args:
        form: ``text`` (rich, for people) or ``json`` (one object per line).
        stream: Where to write; stderr by default.
    """

    def __init__(self, form: str = "text", stream: TextIO | None = None):
        self.form = form
        self.stream = stream or sys.stderr
        self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def _json(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.stream.flush()

    def attempt(self, work: Work, outcome: Outcome) -> None:
        """One line for a finished attempt."""
        took = (outcome.stop or 0) - (outcome.started or 0)
        error = outcome.error or {}
        if self.form == "json":
            self._json({"event": "attempt", "id": work.id, "pipeline": work.pipeline,
                        "attempt": work.attempt, "status": outcome.status,
                        "seconds": round(took, 4), "error": error or None})  # fmt: skip
            return
        style = _STYLE.get(outcome.status, "")
        why = f"  {error.get('type')}: {error.get('message')}" if error else ""
        self._console.print(
            f"[{style}]{outcome.status:<7}[/] {work.id}  {escape(work.pipeline)}  "
            f"attempt {work.attempt}  {took:.3f} s{escape(why)}"
        )

    def problem(self, message: str) -> None:
        """One line about something the runner noticed."""
        if self.form == "json":
            self._json({"event": "notice", "message": message})
        else:
            self._console.print(f"[yellow]notice[/]  {escape(message)}")
