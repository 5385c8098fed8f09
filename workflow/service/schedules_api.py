"""``/schedules``: the schedules that pipeline configurations with a ``schedule`` made
(``POST /pipelines``): list, one, pause, resume, remove."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from workflow.pipelines.schedules import Schedules
from workflow.service.access import needs, who
from workflow.service.dispatch import json_reply

router = APIRouter(tags=["schedules"])


async def _schedules(request: Request) -> Schedules:
    return request.app.state.pipelines.schedules  # type: ignore[no-any-return]


Verbs = Annotated[Schedules, Depends(_schedules)]
Status = Literal["active", "paused", "expired"]


@router.get("", **needs("viewer"), summary="Schedules, newest first, with their next time")
def schedules(schedules: Verbs, status: Annotated[list[Status] | None, Query()] = None,
              name: Annotated[str | None, Query(max_length=128)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:  # fmt: skip
    """Each: ``id``, ``name``, ``status``, ``cronspec``, ``timezone``, ``lives`` (-1:
    forever), ``has_spawned``, ``next_time``, ``last_time``, ``history`` (spawned runs
    and pauses) and the configuration."""
    return json_reply(schedules.list(status=list(status or []) or None, name=name, limit=limit))


@router.get("/{id}", **needs("viewer"), summary="One schedule")
def schedule(schedules: Verbs, id: str) -> Response:
    return json_reply(schedules.get(id))


@router.post("/{id}/pause", **needs("operator"), summary="Spawn nothing until resumed")
def pause(schedules: Verbs, id: str, request: Request) -> Response:
    return json_reply(schedules.pause(id, by=who(request)))


@router.post("/{id}/resume", **needs("operator"),
             summary="Spawn again; the next time counts from now")
def resume(schedules: Verbs, id: str, request: Request) -> Response:
    return json_reply(schedules.resume(id, by=who(request)))


@router.delete("/{id}", **needs("operator"), summary="Remove a schedule (its runs stay)")
def remove(schedules: Verbs, id: str) -> Response:
    return json_reply({"removed": schedules.remove(id)})
