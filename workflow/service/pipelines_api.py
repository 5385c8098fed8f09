"""``/pipelines``: deploy a pipeline configuration (CHIME's v2 YAML, as JSON), and its
runs: list, one, cancel, retry. Each route is one call of ``workflow.pipelines``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from workflow.pipelines import Pipelines
from workflow.service.access import needs, who
from workflow.service.dispatch import json_reply

router = APIRouter(tags=["pipelines"])


async def _pipelines(request: Request) -> Pipelines:
    return request.app.state.pipelines  # type: ignore[no-any-return]


Verbs = Annotated[Pipelines, Depends(_pipelines)]
Status = Literal["running", "success", "failure", "cancelled"]


@router.post("", **needs("operator"), summary="Deploy a pipeline configuration: start a run")
def deploy(pipelines: Verbs, request: Request,
           config: Annotated[dict[str, Any], Body()]) -> Response:  # fmt: skip
    """The body is a v2 configuration (``version: "2"``, ``name``, ``defaults``,
    ``pipeline.steps``, ...) as JSON; the reply is the run, its first stage deposited."""
    return json_reply(pipelines.deploy(config, by=who(request)))


@router.get("", **needs("viewer"), summary="Pipeline runs, newest first")
def runs(pipelines: Verbs, status: Annotated[list[Status] | None, Query()] = None,
         name: Annotated[str | None, Query(max_length=128)] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:  # fmt: skip
    return json_reply(pipelines.runs(status=list(status or []) or None, name=name, limit=limit))


@router.get("/{id}", **needs("viewer"), summary="One pipeline run, with its steps and works")
def run(pipelines: Verbs, id: str) -> Response:
    return json_reply(pipelines.run(id))


@router.post("/{id}/cancel", **needs("operator"),
             summary="Cancel a running pipeline run and its queued and running works")
def cancel(pipelines: Verbs, id: str, request: Request) -> Response:
    return json_reply(pipelines.cancel(id, by=who(request)))


@router.post("/{id}/retry", **needs("operator"),
             summary="Run the failed steps of an ended pipeline run again, and what follows")
def retry(pipelines: Verbs, id: str, request: Request) -> Response:
    return json_reply(pipelines.retry(id, by=who(request)))
