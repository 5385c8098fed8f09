"""``/ui``: what the web UI shows beyond the bucket and results routes: the dashboard,
and a live stream of it (server-sent events, one snapshot a second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from workflow.buckets import Buckets
from workflow.service.access import needs
from workflow.service.buckets_api import json_reply
from workflow.tokens import ROLES, allows

router = APIRouter(tags=["ui"])
#: The dashboard's chart covers this many minutes, the last one still running.
MINUTES = 60
PRIORITIES = range(1, 6)
Seconds = Annotated[float, Query(ge=0.2, le=60)]


def dashboard(buckets: Buckets, now: float) -> dict[str, Any]:
    """Per pipeline: counts by status, paused, defaults and the last change to them, the
    age of the oldest queued work, works finished (and failed) per minute over the last
    hour, and the hour's failure rate."""
    counts = buckets.counts()
    settings = buckets.store.settings()
    first = int(now // 60 * 60) - (MINUTES - 1) * 60
    minutes = buckets.store.finished_per_minute(first)
    names = sorted(set(counts) | set(settings) | {p for _, p, _, _ in minutes})
    series = {name: ([0] * MINUTES, [0] * MINUTES) for name in names}
    for minute, pipeline, status, n in minutes:
        slot = (minute - first) // 60
        if 0 <= slot < MINUTES:
            finished, failed = series[pipeline]
            finished[slot] += n
            if status == "failure":
                failed[slot] += n
    pipelines = []
    for name in names:
        finished, failed = series[name]
        done = sum(finished)
        oldest = _oldest_queued(buckets, name) if counts.get(name, {}).get("queued") else None
        own = settings.get(name, {})
        changes = own.get("history") or []
        pipelines.append({
            "name": name, "paused": bool(own.get("paused")),
            "defaults": own.get("defaults") or {},
            "last_change": changes[-1] if changes else None,
            "counts": counts.get(name, {}),
            "oldest_queued_s": None if oldest is None else max(0.0, now - oldest),
            "per_minute": {"start": first, "finished": finished, "failed": failed},
            "finished_last_hour": done,
            "failure_rate": sum(failed) / done if done else None,
        })  # fmt: skip
    return {"time": now, "pipelines": pipelines}


def _oldest_queued(buckets: Buckets, pipeline: str) -> float | None:
    # One index seek per priority: the claim index orders queued works by pipeline,
    # priority and creation.
    oldest = None
    for priority in PRIORITIES:
        query = {"pipeline": pipeline, "status": "queued", "priority": priority}
        for doc in buckets.store.work.find(query, sort=[("creation", 1)], limit=1):
            created = float(doc["creation"])
            oldest = created if oldest is None else min(oldest, created)
    return oldest


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
    return json_reply(dashboard(request.app.state.buckets, time.time()))


@router.get("/events", **needs("viewer"),
            summary="The dashboard as server-sent events, one a second")
async def events(request: Request, interval: Seconds = 1.0) -> StreamingResponse:
    buckets: Buckets = request.app.state.buckets

    async def stream() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            snapshot = await to_thread.run_sync(dashboard, buckets, time.time())
            yield b"event: dashboard\ndata: " + orjson.dumps(snapshot) + b"\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})  # fmt: skip
