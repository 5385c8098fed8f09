"""What the server tells people of, as data: the events of a work that its ``notify``
names, the alert rules operators set per pipeline, and the messages (``notes``) both
put in the outbox (``workflow.store.base.Outbox``); ``workflow.notify`` delivers them.

A note is keyed by what it tells of and to whom: ``WORK/ATTEMPT/EVENT/TARGET`` for a
work, ``rule:PIPELINE/RULE/EPISODE/EVENT/TARGET`` for a rule; the receiver is told
the key without the target (``idempotency``), the same on every try, so that it can
drop a message it has had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflow.errors import InvalidWork
from workflow.work import FINISHED, TARGET, Event

Doc = dict[str, Any]
#: A rule's events: its condition became true, or false again.
RuleEvent = Literal["fired", "cleared"]
#: What each kind of rule needs, and may have, besides ``name``, ``kind`` and ``to``.
_NEEDS = {"failure-rate": ("threshold",), "oldest-queued": ("limit",), "no-runner": ()}
_MAY = {"failure-rate": ("threshold", "window", "minimum"), "oldest-queued": ("limit",),
        "no-runner": ()}  # fmt: skip
#: A work's fields a message about it carries.
_TOLD = ("id", "pipeline", "status", "attempt", "retries", "site", "user", "tags", "event",
         "function", "command", "creation", "start", "stop", "results", "products",
         "plots")  # fmt: skip


class Rule(BaseModel):
    """An alert an operator sets on a pipeline (``PipelineSettings.rules``).

    - ``failure-rate``: of the works finished in the last ``window`` seconds (at least
      ``minimum`` of them), the share that failed reaches ``threshold`` (0 to 1);
    - ``oldest-queued``: its oldest queued work has waited ``limit`` seconds or more;
    - ``no-runner``: it has queued works and no online runner takes the pipeline.

    It fires once as its condition becomes true and tells ``to``; then not again until
    the condition is false again, when it tells them it cleared.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=TARGET)
    kind: Literal["failure-rate", "oldest-queued", "no-runner"]
    to: list[Annotated[str, Field(pattern=TARGET)]] = Field(min_length=1, max_length=10)
    threshold: float | None = Field(default=None, gt=0, le=1)
    window: int | None = Field(default=None, ge=60, le=7 * 86400)
    minimum: int | None = Field(default=None, ge=1, le=1_000_000)
    limit: float | None = Field(default=None, gt=0, le=30 * 86400)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Rule:
        for name in _NEEDS[self.kind]:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.kind} rule needs {name}")
        for name in ("threshold", "window", "minimum", "limit"):
            if getattr(self, name) is not None and name not in _MAY[self.kind]:
                raise ValueError(f"{name} has no meaning for a {self.kind} rule; it takes "
                                 f"{', '.join(_MAY[self.kind]) or 'only name and to'}")  # fmt: skip
        return self


def check_targets(named: list[tuple[str, str]], known: frozenset[str] | None) -> None:
    """Refuse a target the server has not configured (``known``; None: any).

    Args:
        named: (field, target name) pairs.

    Raises:
        InvalidWork: naming the field and the targets there are.
    """
    for where, name in named:
        if known is not None and name not in known:
            there = ", ".join(sorted(known)) or "none (see WORKFLOW_NOTIFY_TARGETS)"
            raise InvalidWork(f"{where}: no target {name!r} is configured on this server; "
                              f"there are: {there}", field=where)  # fmt: skip


def event_of(before: str, new: Doc, last: Doc) -> Event | None:
    """The event a work's move from status ``before`` to ``new`` is, if any (``last``:
    ``new``'s last history entry)."""
    if last.get("kind", "attempt") != "attempt":
        return None
    if new["status"] == "success":
        return "success"
    if new["status"] == "failure":
        return "failure"
    if before == "running" and new["status"] == "queued" and last.get("outcome") in (
            "failure", "lost"):  # fmt: skip
        return "retrying"
    return None


def asks(notify: Doc | None) -> bool:
    """Whether a work's ``notify`` asks to tell anyone anything."""
    return notify is not None and bool(notify.get("to") or _slack_set(notify.get("slack")))


def work_notes(before: str, new: Doc, clock: Callable[[], float], slack: str) -> list[Doc]:
    """The notes a work's move from ``before`` to ``new`` puts in the outbox: one per
    target its ``notify`` names for the event (``slack``: the server's Slack target,
    for CHIME's ``notify.slack``), made at ``clock()``."""
    notify = new.get("notify")
    if notify is None or not asks(notify):
        return []  # (most works, and every heartbeat: no cost beyond this)
    last = (new.get("history") or [{}])[-1]
    event = event_of(before, new, last)
    if event is None:
        return []
    targets: dict[str, Doc | None] = {}
    if _slack_set(notify.get("slack")) and event in (notify.get("on") or FINISHED):
        targets[slack] = notify["slack"]
    for send in notify.get("to") or []:
        if event in (send.get("on") or FINISHED):
            targets.setdefault(send["target"], None)
    told = {name: new.get(name) for name in _TOLD}
    told.update(error=last.get("error"), reason=last.get("reason"))
    said, now = f"{new['id']}/{new['attempt']}/{event}", clock()
    return [note(f"{said}/{target}", said, target, event, now, work=new["id"],
                 attempt=new["attempt"], pipeline=new["pipeline"], subject=told,
                 slack=options)
            for target, options in targets.items()]  # fmt: skip


def rule_notes(pipeline: str, rule: Rule, episode: int, event: RuleEvent, detail: Doc,
               now: float) -> list[Doc]:  # fmt: skip
    """The notes of a rule on ``pipeline`` that fired (or cleared) in ``episode``."""
    said = f"rule:{pipeline}/{rule.name}/{episode}/{event}"
    subject = {"pipeline": pipeline, "rule": rule.model_dump(exclude_none=True), **detail}
    return [note(f"{said}/{target}", said, target, event, now, pipeline=pipeline,
                 subject=subject) for target in dict.fromkeys(rule.to)]  # fmt: skip


def note(key: str, idempotency: str, target: str, event: str, now: float, **more: Any) -> Doc:
    """A new message to ``target`` (``workflow.store.base.Outbox``)."""
    return {"key": key, "idempotency": idempotency, "target": target, "event": event,
            "state": "pending", "version": 1, "created": now, "due": now, "tries": 0,
            "work": None, **more}  # fmt: skip


def _slack_set(slack: Doc | None) -> bool:
    """Whether CHIME's ``notify.slack`` asks for a message at all."""
    return slack is not None and any(slack.get(k) for k in ("channel_id", "member_ids",
                                                              "message", "blocks"))  # fmt: skip
