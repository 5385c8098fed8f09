"""Why a queued work is not running: the reasons, most decisive first.

Each reason is a ``code`` and a sentence an operator can act on:

- ``paused``: its pipeline is paused (by whom, since when);
- ``backoff``: it waits until ``not_before`` after a failed attempt;
- ``no-runner``: no online runner takes its pipeline, site and tags (the online ones
  are named, with what they take);
- ``busy``: runners take it, but each holds as many works as it runs at once;
- ``behind``: N queued works of its pipeline come before it (higher priority, or the
  same and older), as runners take them.

``Buckets`` has ``why`` as its own (``class Buckets(..., RunnerVerbs, WhyVerbs,
ReadingVerbs)``); the runners come from ``workflow.buckets.runners``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workflow.buckets.reading import ReadingVerbs
from workflow.store.base import Doc
from workflow.wire import PipelineSettings


class WhyVerbs(ReadingVerbs):
    """What anyone with a viewer's token may ask about a work that waits."""

    runners: Callable[[], list[Doc]]  # workflow.buckets.runners

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
                           _backoff(doc), _no_runner_or_busy(doc, self.runners()),
                           self._behind(doc)):  # fmt: skip
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


def _no_runner_or_busy(doc: Doc, runners: list[Doc]) -> Doc | None:
    online = [r for r in runners if r["state"] == "online"]
    serving = [r for r in online if _takes(r, doc)]
    if not serving:
        wants = _takes_what(doc)
        if not online:
            said = "no runner is online"
        else:
            said = "the online runners take other work: " + "; ".join(
                f"{_name(r)} takes {_offer(r)}" for r in online[:10]
            )
        return {
            "code": "no-runner",
            "runners": [_brief(r) for r in online],
            "message": f"no online runner takes {wants}: {said}",
        }
    if all(r["holding"] >= int(r.get("concurrency") or 1) for r in serving):
        each = "; ".join(
            f"{_name(r)} holds {r['holding']} (runs {int(r.get('concurrency') or 1)} at once)"
            for r in serving[:10]
        )
        n = len(serving)
        return {"code": "busy", "runners": [_brief(r) for r in serving],
                "message": f"{n} online runner{'s' if n != 1 else ''} take{'s' if n == 1 else ''} "
                           f"it, and {'all are' if n != 1 else 'it is'} busy: {each}"}  # fmt: skip
    return None


def _takes(runner: Doc, doc: Doc) -> bool:
    """Whether ``runner`` would take ``doc`` by pipeline, site and tags (its withdraw's
    filters; see ``workflow.wire.Withdraw``)."""
    pipelines, site, tags = runner.get("pipelines"), runner.get("site"), runner.get("tags")
    return ((not pipelines or doc["pipeline"] in pipelines)
            and (site is None or doc.get("site") == site)
            and (not tags or bool(set(tags) & set(doc.get("tags") or []))))  # fmt: skip


def _takes_what(doc: Doc) -> str:
    return _scope(f"pipeline {doc['pipeline']}", doc.get("site"), doc.get("tags"))


def _offer(runner: Doc) -> str:
    pipelines = runner.get("pipelines")
    return _scope(f"pipelines {', '.join(pipelines)}" if pipelines else "every pipeline",
                  runner.get("site"), runner.get("tags"))  # fmt: skip


def _scope(pipelines: str, site: str | None, tags: list[str] | None) -> str:
    """What a work is, or what a runner takes: its pipelines, site and tags."""
    if site:
        pipelines += f" at site {site}"
    if tags:
        pipelines += f" with tags {', '.join(map(str, tags))}"
    return pipelines


def _name(runner: Doc) -> str:
    return str(runner.get("name") or runner["id"])


def _brief(runner: Doc) -> Doc:
    return {key: runner.get(key) for key in ("id", "name", "host", "pipelines", "site", "tags",
                                             "concurrency", "holding")}  # fmt: skip


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
