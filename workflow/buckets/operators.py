"""The operators' bucket verbs: cancel, change, retry, and pipeline settings.

``Buckets`` has these as its own (``class Buckets(OperatorVerbs)``); they are written
over the same store and the same primitives as the runners' verbs, and every action is
recorded in the work's or the pipeline's history under the name of whoever took it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from workflow.buckets import bulk
from workflow.errors import InvalidWork, NotFound, TransitionConflict
from workflow.history import ActionEntry, AttemptEntry
from workflow.notices import check_targets
from workflow.store.base import Doc, Store
from workflow.wire import (
    CHANGEABLE,
    HISTORY,
    Bulk,
    BulkReply,
    PipelineSettings,
    parse_settings,
)
from workflow.work import parse_work

#: What a retried work takes over from the original.
_REPEATED = ("pipeline", "function", "command", "graph", "parameters", "tags", "event", "site",
             "user", "priority", "retries", "timeout", "backoff", "config", "notify")  # fmt: skip


class OperatorVerbs:
    """What an operator does to queued and running works and to pipelines."""

    store: Store
    clock: Callable[[], float]
    #: The notification targets configured on the server (None: any name goes).
    targets: frozenset[str] | None

    # Defined by ``Buckets``.
    get_active: Callable[[str], Doc]
    deposit: Callable[..., list[str]]
    move: Callable[[Doc, Doc], Doc]
    changed: Callable[[float | None], None]
    batch: Callable[[], AbstractContextManager[None]]
    tell: Callable[[Callable[[Any], None], Any], None]
    settings: Callable[[str], PipelineSettings]
    _entry: Callable[..., AttemptEntry]

    def cancel(self, id: str, *, by: str | None = None) -> Doc:
        """Cancel a queued or running work: it moves to the results as ``cancelled``."""
        doc = self.get_active(id)
        history = list(doc.get("history", []))
        if doc["status"] == "running":
            entry = self._entry(doc, "cancelled", reason="cancelled", stopped=self.clock())
            history.append(entry.model_dump(mode="json"))
        history.append(action("cancel", self.clock(), by))
        return self.move(doc, {**doc, "status": "cancelled", "lease": None, "history": history})

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None,
               by: str | None = None) -> Doc:  # fmt: skip
        """Change priority and/or retries of a queued work."""
        doc = self.get_active(id)
        if doc["status"] != "queued":
            raise TransitionConflict(f"work {id} is {doc['status']}; only queued work changes",
                                     field="status", id=id, status=doc["status"])  # fmt: skip
        changes = {k: v for k, v in (("priority", priority), ("retries", retries)) if v is not None}
        if not changes:
            raise InvalidWork("give priority and/or retries", field="priority")
        new = parse_work({**doc, **changes}, "work").payload()
        new["history"] = [*doc.get("history", []), action("change", self.clock(), by, changes)]
        return self.move(doc, new)

    def retry(self, id: str, parameters: dict[str, Any] | None = None, *,
              from_failure: bool = False, by: str | None = None) -> Doc:  # fmt: skip
        """Queue a finished work again as a new work, with other ``parameters`` if given.

        The two are linked: the new work's history starts with a ``retry-of`` action,
        the original's gains ``retried-as``; both name ``by``. A graph work retried
        ``from_failure`` reuses the outputs its nodes had, so only what failed and what
        lies downstream runs again (the action says so; ``workflow.graph.cache``).

        Raises:
            NotFound: no finished work ``id``.
            InvalidWork: the new parameters are not a valid work's, or ``from_failure``
                for a work without a graph.
        """
        original = self.store.results.get(id)
        if original is None:
            raise NotFound(f"no finished work {id}", field="id", id=id)
        if from_failure and not original.get("graph"):
            raise InvalidWork(f"work {id} has no graph: only a graph work is retried from "
                              "its point of failure", field="from_failure", id=id)  # fmt: skip
        raw = {name: original[name] for name in _REPEATED if original.get(name) is not None}
        if parameters is not None:
            raw["parameters"] = parameters
        now = self.clock()
        with self.batch():  # one transaction: no runner sees the new work unlinked
            (new_id,) = self.deposit([raw])
            queued = self.get_active(new_id)
            linked = {"of": id, "from_failure": True} if from_failure else {"of": id}
            new = self.move(queued, {**queued, "history": [action("retry-of", now, by,
                                                                  linked)]})  # fmt: skip
            history = [*original.get("history", []), action("retried-as", now, by, {"as": new_id})]
            self.store.results.swap(id, {"status": original["status"]},
                                    {**original, "history": history})  # fmt: skip
        return new

    def bulk(self, request: Bulk, *, by: str | None = None) -> BulkReply:
        """Cancel, or change priority and retries of, every bucket work ``request.filter``
        matches, the count confirmed (see ``workflow.buckets.bulk``)."""
        return bulk.act_on_bucket(self, request, by=by)  # type: ignore[arg-type]

    # -- pipelines -----------------------------------------------------------------------

    def configure(self, pipeline: str, changes: dict[str, Any], *, by: str | None = None
                  ) -> PipelineSettings:  # fmt: skip
        """Merge ``changes`` (``defaults``, ``paused`` and/or ``rules``, which replace
        the rules there were) into the pipeline's settings; the change goes into the
        pipeline's history (its last ``HISTORY``) with ``by``."""
        parse_work({"pipeline": pipeline}, "pipeline")
        if not isinstance(changes, dict) or not changes:
            raise InvalidWork("give defaults, paused and/or rules", field="changes")
        for name in changes:
            if name not in CHANGEABLE:
                raise InvalidWork(f"{name!r} cannot be changed; change "
                                  f"{' or '.join(CHANGEABLE)}", field=name)  # fmt: skip
        current = self.settings(pipeline).model_dump()
        check_targets(_targets_named(changes), self.targets)
        if "defaults" in changes and isinstance(changes["defaults"], dict):
            changes = {**changes, "defaults": {**current["defaults"], **changes["defaults"]}}
        name = ("pause" if changes["paused"] else "resume") if list(changes) == ["paused"] \
            else "configure"
        entry = action(name, self.clock(), by, changes)
        history = [*current["history"], entry][-HISTORY:]
        settings = parse_settings({**current, **changes, "history": history}, where="")
        self.store.put_settings(pipeline, settings.model_dump())
        if not settings.paused:
            self.tell(self.changed, None)  # resumed: held withdraws look again
        return settings


def _targets_named(changes: dict[str, Any]) -> list[tuple[str, str]]:
    """The targets ``changes`` name, with their fields: its rules' ``to`` and its default
    ``notify.to`` (what is not even shaped right is left to the model to refuse)."""
    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    def part(value: Any, name: str) -> Any:
        return value.get(name) if isinstance(value, dict) else None

    named = [(f"rules.{n}.to.{m}", target)
             for n, rule in enumerate(items(changes.get("rules")))
             for m, target in enumerate(items(part(rule, "to")))]  # fmt: skip
    sends = items(part(part(changes.get("defaults"), "notify"), "to"))
    named += [(f"defaults.notify.to.{n}.target", part(send, "target"))
              for n, send in enumerate(sends)]  # fmt: skip
    return [(field, name) for field, name in named if isinstance(name, str)]


def action(action: str, at: float, by: str | None, changes: dict[str, Any] | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """A history entry for an operator's ``action`` at ``at`` by ``by``."""
    return ActionEntry(action=action, at=at, by=by, changes=changes).model_dump(mode="json")
