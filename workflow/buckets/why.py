"""Why a queued work is not running: the reasons, most decisive first.

Each reason is a ``code`` and a sentence an operator can act on:

- ``paused``: its pipeline is paused (by whom, since when);
- ``backoff``: it waits until ``not_before`` after a failed attempt;
- ``behind``: N queued works of its pipeline come before it (higher priority, or the
  same and older), as runners take them.

``Buckets`` has ``why`` as its own (``class Buckets(..., WhyVerbs, ReadingVerbs)``).
"""

from __future__ import annotations

import time
from typing import Any

from workflow.buckets.reading import ReadingVerbs
from workflow.store.base import Doc
from workflow.wire import PipelineSettings


class WhyVerbs(ReadingVerbs):
    """What anyone with a viewer's token may ask about a work that waits."""

    def why(self, id: str) -> Doc:
        """Work ``id``'s status and, if it is queued, why it is not running yet
        (``reasons``, most decisive first; none when a runner may take it next).

        Raises:
            NotFound: there is no such work.
        """
        doc = self.get(id)
        reasons: list[Doc] = []
        if doc["status"] == "queued":
            for reason in (_paused(self.settings(doc["pipeline"]), doc["pipeline"]),
                           _backoff(doc), self._behind(doc)):  # fmt: skip
                if reason is not None:
                    reasons.append(reason)
        return {"id": doc["id"], "status": doc["status"], "reasons": reasons}

    def _behind(self, doc: Doc) -> Doc | None:
        ahead: dict[str, Any] = {"pipeline": doc["pipeline"], "status": "queued", "$or": [
            {"priority": {"$gt": doc["priority"]}},
            {"priority": doc["priority"], "creation": {"$lt": doc["creation"]}}]}  # fmt: skip
        n = self.store.work.count(ahead)
        if not n:
            return None
        return {"code": "behind", "ahead": n,
                "message": f"{n} queued work{'s' if n != 1 else ''} of {doc['pipeline']} "
                           f"come{'s' if n == 1 else ''} before it: a higher priority, "
                           "or the same and older"}  # fmt: skip


def _paused(settings: PipelineSettings, pipeline: str) -> Doc | None:
    if not settings.paused:
        return None
    last = next((e for e in reversed(settings.history) if e.action == "pause"), None)
    by = f" by {last.by}" if last is not None and last.by else ""
    since = f" since {_when(last.at)}" if last is not None else ""
    return {"code": "paused", "by": last.by if last else None,
            "since": last.at if last else None,
            "message": f"its pipeline {pipeline} is paused{by}{since}: runners take none "
                       "of its works until an operator resumes it"}  # fmt: skip


def _backoff(doc: Doc) -> Doc | None:
    until = doc.get("not_before")
    if until is None or until <= time.time():
        return None
    return {"code": "backoff", "until": until,
            "message": f"it waits until {_when(until)} (in {until - time.time():.0f} s) "
                       "before its next attempt, after a failed one"}  # fmt: skip


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
