"""``/notifications``: the outbox's messages (of one work, say), the targets configured
on the server (names, kinds and hosts: never their secrets), the pipelines' alerts, and
a test message to a target."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from workflow.errors import NotFound
from workflow.notices import note
from workflow.notify.rules import KIND
from workflow.service.access import needs, who
from workflow.service.dispatch import json_reply
from workflow.work import TARGET

router = APIRouter(tags=["notifications"])
State = Literal["pending", "sending", "recording", "done"]
#: What a listing shows of a message (its subject is the work's, read on its page).
_SHOWN = ("key", "idempotency", "target", "event", "state", "outcome", "tries", "created",
          "due", "settled", "detail", "work", "attempt", "pipeline")  # fmt: skip


class Test(BaseModel):
    """A test message to ``target``."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=TARGET)
    message: str = Field(default="A test message from workflow.", min_length=1, max_length=2000)


@router.get("", **needs("viewer"), summary="Notifications, newest first")
def notifications(request: Request, work: Annotated[str | None, Query(max_length=256)] = None,
                  state: Annotated[list[State] | None, Query()] = None,
                  target: Annotated[str | None, Query(pattern=TARGET)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:  # fmt: skip
    """Each message: its ``key`` (``idempotency``, the key receivers are told), ``target``,
    ``event``, ``state`` (``pending``, ``sending``, ``recording``, ``done``), ``outcome``
    (``delivered`` or ``failed``, once settled), ``tries``, ``due`` (its next try),
    ``detail`` (why the last try failed), and its ``work`` and ``attempt`` or
    ``pipeline``."""
    found = request.app.state.buckets.store.outbox.find(work=work, states=list(state or []) or None,
                                                target=target, limit=limit)  # fmt: skip
    return json_reply([{name: doc.get(name) for name in _SHOWN} for doc in found])


@router.get("/targets", **needs("viewer"), summary="The targets configured on the server")
def targets(request: Request) -> Response:
    """Each: ``name``, ``type`` (``slack``, ``webhook`` or ``mail``) and ``where`` (the
    host it goes to); and which one CHIME's ``notify.slack`` uses (``slack``)."""
    settings = request.app.state.settings
    return json_reply({"targets": [{"name": name, "type": target.type, "where": target.where()}
                                   for name, target in sorted(settings.notify_targets.items())],
                       "slack": settings.notify_slack})  # fmt: skip


@router.get("/alerts", **needs("viewer"), summary="The pipelines' alert rules' states")
def alerts(request: Request, pipeline: Annotated[str | None, Query(max_length=128)] = None,
           status: Annotated[list[Literal["firing", "clear"]] | None, Query()] = None
           ) -> Response:  # fmt: skip
    """Each rule that was looked at: ``id`` (``PIPELINE/RULE``), ``status`` (``firing``
    or ``clear``), ``episode`` (how many times it fired), ``since`` and ``detail``."""
    found = request.app.state.buckets.store.documents.find(KIND, status=list(status or []) or None,
                                                   name=pipeline, limit=1000)  # fmt: skip
    return json_reply(found)


@router.post("/test", **needs("operator"), summary="Send a test message to a target now")
def test(request: Request, body: Annotated[Test, Body()]) -> dict[str, Any]:
    """Sends at once, outside the outbox, and says how it went: ``ok`` and ``detail``
    (the receiver's answer, or why it failed)."""
    deliverer = request.app.state.notifier.deliverer
    if body.target not in deliverer.targets:
        there = ", ".join(sorted(deliverer.targets)) or "none (see WORKFLOW_NOTIFY_TARGETS)"
        raise NotFound(f"no target {body.target!r} is configured on this server; there are: "
                       f"{there}", field="target")  # fmt: skip
    by = who(request) or "someone"
    doc = note(f"test/{body.target}", f"test:{by}", body.target, "test", 0.0,
               subject={"message": f"{body.message} (sent by {by})"})  # fmt: skip
    sent = deliverer.send(doc)
    return {"ok": sent.ok, "detail": sent.detail, "final": sent.final}
