"""The alert rules operators set per pipeline (``workflow.notices.Rule``), looked at
every pass of the server's notifier: a rule whose condition became true fires once,
and clears once it is false again.

Each rule's state is a document (kind ``alerts``, id ``PIPELINE/RULE``): ``status``
``firing`` or ``clear``, the ``episode`` (how many times it fired), ``since`` and what
it saw (``detail``). A change of state is one compare-and-set on its version with the
messages it causes (``Documents.put`` with notes): two servers looking at once fire
it once, and a crash never fires it without telling, nor tells without firing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workflow.notices import Rule, RuleEvent, rule_notes
from workflow.store.base import Doc

KIND = "alerts"


class Watch:
    """Looks at every pipeline's rules (see the module).

    Args:
        buckets: The bucket verbs (their store, runners and counts).
    """

    def __init__(self, buckets: Any, clock: Callable[[], float] = time.time) -> None:
        self.buckets = buckets
        self.clock = clock

    def run(self) -> int:
        """One look at every rule; return how many fired or cleared."""
        now, changed = self.clock(), 0
        rules = [(pipeline, Rule.model_validate(raw))
                 for pipeline, settings in sorted(self.buckets.store.settings().items())
                 for raw in settings.get("rules") or []]  # fmt: skip
        documents = self.buckets.store.documents
        states = {doc["id"]: doc for doc in documents.find(KIND, limit=10_000)}
        kept = {f"{pipeline}/{rule.name}" for pipeline, rule in rules}
        # A rule removed: its state with it, and no message.
        documents.delete(KIND, [id for id in states if id not in kept])
        if not rules:
            return 0
        seen = _Seen(self.buckets, now, max((r.window or 0) for _, r in rules))
        for pipeline, rule in rules:
            firing, detail = seen.condition(pipeline, rule)
            state = states.get(f"{pipeline}/{rule.name}")
            changed += self._settle(pipeline, rule, state, firing, detail, now)
        return changed

    def _settle(self, pipeline: str, rule: Rule, state: Doc | None, firing: bool, detail: Doc,
                now: float) -> int:  # fmt: skip
        """Move the rule's state from ``state`` (None: never looked at) as ``firing``
        says, with its messages; 1 if it moved."""
        documents = self.buckets.store.documents
        id = f"{pipeline}/{rule.name}"
        was = state is not None and state["status"] == "firing"
        if firing == was:
            return 0
        episode = int(state["episode"] if state else 0) + (1 if firing else 0)
        event: RuleEvent = "fired" if firing else "cleared"
        new = {"id": id, "version": int(state["version"]) + 1 if state else 1,
               "status": "firing" if firing else "clear", "name": pipeline,
               "creation": state["creation"] if state else now, "rule": rule.name,
               "episode": episode, "since": now, "detail": detail}  # fmt: skip
        notes = rule_notes(pipeline, rule, episode, event, detail, now)
        put = documents.put(KIND, new, state["version"] if state else None, notes)
        if put and notes:
            self.buckets.tell(self.buckets.noted, None)
        return int(put)


class _Seen:
    """What one pass sees, each read once: finished counts, runners, queued counts."""

    def __init__(self, buckets: Any, now: float, window: int) -> None:
        self.buckets, self.now = buckets, now
        self.minutes = buckets.store.finished_per_minute(now - window - 60) if window else []
        self._runners: list[Doc] | None = None
        self._counts: dict[str, dict[str, int]] | None = None

    def condition(self, pipeline: str, rule: Rule) -> tuple[bool, Doc]:
        if rule.kind == "failure-rate":
            return self._failure_rate(pipeline, rule)
        if rule.kind == "oldest-queued":
            return self._oldest_queued(pipeline, rule)
        return self._no_runner(pipeline)

    def _failure_rate(self, pipeline: str, rule: Rule) -> tuple[bool, Doc]:
        window, threshold = int(rule.window or 900), float(rule.threshold or 1)
        since = self.now - window
        rows = [(status, n) for minute, p, status, n in self.minutes
                if p == pipeline and minute + 60 > since
                and status in ("success", "failure")]  # fmt: skip
        failed = sum(n for status, n in rows if status == "failure")
        finished = sum(n for _, n in rows)
        rate = failed / finished if finished else 0.0
        firing = finished >= (rule.minimum or 5) and rate >= threshold
        return firing, {"failed": failed, "finished": finished, "rate": round(rate, 4),
                        "message": f"{failed} of {finished} works finished in the last "
                                   f"{_span(window)} failed ({rate:.0%}; the threshold "
                                   f"is {threshold:.0%})"}  # fmt: skip

    def _oldest_queued(self, pipeline: str, rule: Rule) -> tuple[bool, Doc]:
        oldest = self.buckets.oldest_queued(pipeline)
        age = self.now - oldest if oldest is not None else 0.0
        limit = float(rule.limit or 0)
        said = (f"its oldest queued work has waited {_span(age)} (the limit is {_span(limit)})"
                if oldest is not None else "no work is queued")  # fmt: skip
        return oldest is not None and age >= limit, {"age": round(age, 1), "message": said}

    def _no_runner(self, pipeline: str) -> tuple[bool, Doc]:
        if self._counts is None:
            self._counts = {p: dict(c) for p, c in self.buckets.counts().items()}
        queued = int(self._counts.get(pipeline, {}).get("queued", 0))
        if self._runners is None:
            self._runners = [r for r in self.buckets.runners() if r["state"] == "online"]
        serving = [r["id"] for r in self._runners
                   if not r.get("pipelines") or pipeline in r["pipelines"]]  # fmt: skip
        if not queued:
            return False, {"queued": 0, "runners": serving, "message": "no work is queued"}
        said = (f"{queued} works are queued and no online runner takes {pipeline}"
                if not serving else f"{len(serving)} online runners take {pipeline}")  # fmt: skip
        return not serving, {"queued": queued, "runners": serving, "message": said}


def _span(seconds: float) -> str:
    """``seconds`` as an operator says it: 45 s, 12 min, 3 h 5 min."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
