"""What a runner says: one readable line per work, or JSON lines for machines."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from workflow.wire import Outcome

_COLOR = {"success": "32", "failure": "31", "retry": "33"}


class Reporter:
    """Writes one line per finished attempt and per problem, to stderr.

    Args:
        form: ``text`` (rich, for people) or ``json`` (one object per line).
        stream: Where to write; stderr by default.
    """

    def __init__(self, form: str = "text", stream: TextIO | None = None):
        self.form = form
        self.stream = stream or sys.stderr
        self._color = self.stream.isatty()

    def _json(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.stream.flush()

    def attempt(self, work: dict[str, Any], outcome: Outcome) -> None:
        """One line for a finished attempt."""
        self.attempts([(work, outcome)])

    def attempts(self, done: list[tuple[dict[str, Any], Outcome]]) -> None:
        """One line per finished attempt, written at once (a runner may report thousands
        of works a second)."""
        if not done:
            return
        if self.form == "json":
            now = round(time.time(), 3)
            self.stream.write("".join(json.dumps({
                "time": now, "event": "attempt", "id": work["id"],
                "pipeline": work["pipeline"], "attempt": work["attempt"],
                "status": outcome.status, "seconds": round(_took(outcome), 4),
                "error": outcome.error.model_dump() if outcome.error else None}) + "\n"
                for work, outcome in done))  # fmt: skip
        else:
            self.stream.write("".join(self._line(work, outcome) for work, outcome in done))
        self.stream.flush()

    def _line(self, work: dict[str, Any], outcome: Outcome) -> str:
        error = outcome.error
        why = f"  {error.type}: {error.message}" if error else ""
        status = f"{outcome.status:<7}"
        if self._color:
            status = f"\033[{_COLOR.get(outcome.status, '0')}m{status}\033[0m"
        return (f"{status} {work['id']}  {work['pipeline']}  attempt {work['attempt']}  "
                f"{_took(outcome):.3f} s{why}\n")  # fmt: skip

    def problem(self, message: str) -> None:
        """One line about something the runner noticed."""
        if self.form == "json":
            self._json({"event": "notice", "message": message})
        else:
            self.stream.write(f"notice  {message}\n")
            self.stream.flush()


def _took(outcome: Outcome) -> float:
    return (outcome.stop or 0) - (outcome.started or 0)
