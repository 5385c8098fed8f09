"""``/ui``: what the web UI shows beyond the bucket and results routes: the dashboard,
and a live stream of it (server-sent events, one snapshot a second, shared by every
stream: see ``workflow.service.live``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import State

from workflow.buckets import Buckets
from workflow.notify.rules import KIND as ALERTS
from workflow.results import Results
from workflow.service.access import Caller, needs
from workflow.service.buckets_api import json_reply
from workflow.service.live import LimitedStream, SharedSnapshot, StreamLimit
from workflow.settings import ServerSettings
from workflow.tokens import ROLES, allows

router = APIRouter(tags=["ui"])
#: The dashboard's chart covers this many minutes, the last one still running.
MINUTES = 60
#: The dashboard lists this many of the newest failed works, their messages cut to
#: ``MESSAGE`` characters (the work's page has the whole error).
FAILURES = 8
MESSAGE = 300
Seconds = Annotated[float, Query(ge=0.2, le=60)]


def dashboard(buckets: Buckets, results: Results, now: float) -> dict[str, Any]:
    """Per pipeline: counts by status, paused, defaults, alert rules (and which fire) and
    the last change to them, the age of the oldest queued work, works finished (and
    failed) per minute over the last hour, and the hour's failure rate; and the newest
    failed works (``failures``)."""
    known = {pipeline["name"]: pipeline for pipeline in buckets.pipelines()}
    first = int(now // 60 * 60) - (MINUTES - 1) * 60
    minutes = buckets.finished_per_minute(first)
    names = sorted(set(known) | {p for _, p, _, _ in minutes})
    series = {name: ([0] * MINUTES, [0] * MINUTES) for name in names}
    for minute, pipeline, status, n in minutes:
        slot = (minute - first) // 60
        if 0 <= slot < MINUTES:
            finished, failed = series[pipeline]
            finished[slot] += n
            if status == "failure":
                failed[slot] += n
    alerts: dict[str, dict[str, Any]] = {}
    for state in buckets.store.documents.find(ALERTS, limit=10_000):
        alerts.setdefault(state["name"], {})[state["rule"]] = {
            "status": state["status"], "since": state["since"],
            "message": (state.get("detail") or {}).get("message")}  # fmt: skip
    pipelines = []
    for name in names:
        finished, failed = series[name]
        done = sum(finished)
        own = known.get(name, {})
        counts = own.get("counts", {})
        oldest = buckets.oldest_queued(name) if counts.get("queued") else None
        changes = own.get("history") or []
        pipelines.append({
            "name": name, "paused": bool(own.get("paused")),
            "defaults": own.get("defaults") or {},
            "rules": own.get("rules") or [], "alerts": alerts.get(name, {}),
            "last_change": changes[-1] if changes else None,
            "counts": counts,
            "oldest_queued_s": None if oldest is None else max(0.0, now - oldest),
            "per_minute": {"start": first, "finished": finished, "failed": failed},
            "finished_last_hour": done,
            "failure_rate": sum(failed) / done if done else None,
        })  # fmt: skip
    return {"time": now, "pipelines": pipelines, "failures": latest_failures(results)}


def latest_failures(results: Results) -> list[dict[str, Any]]:
    """The ``FAILURES`` newest failed works (newest created first: the results' status
    index walks them in that order, so this costs no sort however many failed), each
    with its last error, shortened, and the work it was retried as, if it was."""
    failures = []
    for doc in results.view({"status": "failure"}, limit=FAILURES):
        history = doc.get("history") or []
        errors = [e["error"] for e in history if e.get("error")]
        error = errors[-1] if errors else {}
        retried = [e["changes"]["as"] for e in history
                   if e.get("action") == "retried-as" and (e.get("changes") or {}).get("as")]
        message = str(error.get("message") or "")
        failures.append({
            "id": doc["id"], "pipeline": doc["pipeline"], "stop": doc.get("stop"),
            "error": {"type": error.get("type"), "message": message[:MESSAGE],
                      "cut": len(message) > MESSAGE},
            "retried_as": retried[-1] if retried else None,
        })  # fmt: skip
    return failures


@router.get("/whoami", **needs("viewer"),
            summary="Who this request's token is, its role, and what that role may do")
def whoami(request: Request) -> dict[str, Any]:
    """``name`` (null on an open server), ``role``, ``open`` (no tokens configured), and
    ``may``: for each role, whether this one includes it."""
    caller = request.state.caller
    return {"name": caller.name, "role": caller.role,
            "open": not request.app.state.settings.keyring,
            "may": {role: allows(caller.role, role) for role in ROLES}}  # fmt: skip


@router.get("/dashboard", **needs("viewer"),
            summary="The dashboard: every pipeline's counts and last hour")
def get_dashboard(request: Request) -> Any:
    state = request.app.state
    return json_reply(dashboard(state.buckets, state.results, time.time()))


@router.get("/events", **needs("viewer"),
            summary="The dashboard as server-sent events, one a second")
async def events(request: Request, interval: Seconds = 1.0) -> StreamingResponse:
    """An event every ``interval`` seconds, or as often as the server computes one
    (``WORKFLOW_DASHBOARD_INTERVAL``): every stream sends the same snapshot. A token (on
    an open server, a client address) may have ``WORKFLOW_DASHBOARD_STREAMS_PER_CALLER``
    streams open, the server ``WORKFLOW_DASHBOARD_STREAMS``; one more gets 429."""
    snapshot, streams = _live(request)
    caller: Caller = request.state.caller
    if caller.name is not None:
        who, kind = caller.name, "token"
    else:
        who, kind = request.client.host if request.client else "unknown", "client"
    streams.open(who, kind)

    async def stream() -> AsyncIterator[bytes]:
        serial = 0
        while not await request.is_disconnected():
            serial, event = await snapshot.after(serial)
            yield event
            await asyncio.sleep(interval)

    return LimitedStream(stream(), on_end=partial(streams.close, who),
                         media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _live(request: Request) -> tuple[SharedSnapshot, StreamLimit]:
    """The app's one dashboard snapshot and its count of open streams, made by the first
    stream (on the event loop, so no two streams make them)."""
    state = request.app.state
    if getattr(state, "live", None) is None:
        settings: ServerSettings = state.settings
        state.live = (SharedSnapshot(partial(_event, state), settings.dashboard_interval),
                      StreamLimit(settings.dashboard_streams,
                                  settings.dashboard_streams_per_caller))  # fmt: skip
    return state.live  # type: ignore[no-any-return]


def _event(state: State) -> bytes:
    """The dashboard now, as one server-sent event."""
    snapshot = dashboard(state.buckets, state.results, time.time())
    return b"event: dashboard\ndata: " + orjson.dumps(snapshot) + b"\n\n"
