"""``/buckets``: queued and running works, leases, batches and operator actions.

Each route is one call of a bucket verb (``workflow.buckets``); CHIME's own routes are
in ``workflow.service.chime_buckets``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from workflow.buckets import Buckets
from workflow.service.access import Caller, current, holder, needs, who
from workflow.service.dispatch import Fast, json_reply
from workflow.wire import (
    LONGEST_WAIT,
    Bulk,
    BulkReply,
    Change,
    CompleteMany,
    Delete,
    EndWait,
    Exchange,
    Heartbeat,
    HeartbeatMany,
    Outcome,
    PipelineSettings,
    ProgressMany,
    Release,
    RetryRequest,
    RunnerInfo,
    Withdraw,
)
from workflow.work import MAX_INT

router = APIRouter(tags=["buckets"])
fast = Fast(router)


async def _buckets(request: Request) -> Buckets:
    # async: a plain function would cost a trip through the thread pool per request.
    return request.app.state.buckets  # type: ignore[no-any-return]


Verbs = Annotated[Buckets, Depends(_buckets)]
Calling = Annotated[Caller, Depends(current)]


# -- the runners' hot routes (workflow.service.dispatch) -----------------------------


@fast.post("/withdraw", role="runner", summary="Claim up to limit works, with a lease",
           holds=lambda body: body)  # fmt: skip
def withdraw(buckets: Buckets, body: Withdraw, caller: Caller) -> Any:
    """With ``wait`` (seconds, up to 30), a request that finds nothing to claim is held
    until a work it can claim arrives, then answered at once; or, when the time is up,
    with no works."""
    return buckets.withdraw(body, by=caller.name)


@fast.post("/exchange", role="runner",
           summary="Report outcomes and claim more works in one request",
           holds=lambda body: None if body.complete else body.withdraw)  # fmt: skip
def exchange(buckets: Buckets, body: Exchange, caller: Caller) -> Any:
    """``complete`` is recorded first, each outcome on its own as in ``/complete``; then
    ``withdraw`` claims as ``/withdraw`` does, in the same transaction where the store
    can. The reply: ``{"completed": [per outcome, as /complete], "works": [...]}``. An
    exchange without outcomes may wait as a withdraw does; one with outcomes answers at
    once, so that they are known to be recorded."""
    completed, works = buckets.exchange(body.complete, body.withdraw, holder=holder(caller),
                                        by=caller.name)  # fmt: skip
    return {"completed": completed, "works": works}


@fast.post("/heartbeat", role="runner",
           summary="Extend the leases of several running attempts at once")
def heartbeat_many(buckets: Buckets, body: HeartbeatMany, caller: Caller) -> Any:
    """Each lease is extended on its own: the reply says, per work, ``ok`` (with the new
    ``expires``) or the error (as in a single call's error body), in the order sent."""
    return buckets.heartbeat_many(body.works, body.lease, holder=holder(caller))


@fast.post("/complete", role="runner", summary="Report the outcomes of several attempts at once")
def complete_many(buckets: Buckets, body: CompleteMany, caller: Caller) -> Any:
    """Each outcome is recorded on its own: the reply says, per work, ``ok`` or the error
    (as in a single call's error body), in the order sent."""
    return buckets.complete_many(body.works, holder=holder(caller), by=caller.name)


@router.post("/progress", **needs("runner"),
             summary="What running attempts wrote, and their graphs' nodes, as they run")
def progress(buckets: Verbs, body: ProgressMany, caller: Calling) -> Response:
    """Per attempt: ``log``, the new bytes of its log (``offset`` to ``end`` of it);
    ``nodes``, each started node's state. Each is recorded on its own: the reply says,
    per work, ``ok`` (with ``size``, the bytes of the log the server has) or the error,
    in the order sent."""
    return json_reply(buckets.progress(body.works, holder=holder(caller)))


@router.post("/withdraw/end", **needs("runner"),
             summary="End this runner's held withdraws now, with no works")
async def end_wait(body: EndWait, request: Request, caller: Calling) -> dict[str, int]:
    """For a runner that stops while its withdraw is held; only the token that holds
    them may end them."""
    return {"ended": request.app.state.waiting.end(body.runner, caller.name)}


# -- the runners on record -----------------------------------------------------------


@router.get(
    "/runners",
    **needs("viewer"),
    summary="Every runner on record: online, offline or stopped, and what it holds",
)
def runners(buckets: Verbs) -> Response:
    """Online ones first. Each: what it announced (``id``, ``name``, ``host``, ``pid``,
    ``version``, ``pipelines``, ``site``, ``tags``, ``concurrency``, ``prefetch``,
    ``lease``, ``runs``, ``start``), ``state`` (``online``; ``offline``: not seen for
    its lease; ``stopped``: it said goodbye), ``last_seen``, ``done`` and ``failed``
    (attempts), ``holding`` (works held now) and the first of them in ``works``.
    Runners not seen for a day are forgotten."""
    return json_reply(buckets.runners())


@router.post("/runners", **needs("runner"), summary="A runner announces itself as it starts")
def announce(buckets: Verbs, body: RunnerInfo, caller: Calling) -> Response:
    return json_reply(buckets.announce(body, by=caller.name))


@router.post("/runners/{id}/goodbye", **needs("runner"), summary="A runner says it has stopped")
def goodbye(buckets: Verbs, id: str, caller: Calling) -> Response:
    """A runner token may say it only for the runners it announced."""
    return json_reply(buckets.goodbye(id, holder=holder(caller)))


# -- one work ---------------------------------------------------------------------------


@router.get("/work", **needs("viewer"), summary="Works in the buckets, newest first")
def works(
    buckets: Verbs,
    pipeline: Annotated[list[str] | None, Query()] = None,
    status: Annotated[list[Literal["queued", "running"]] | None, Query()] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    return json_reply(buckets.works(pipeline, status, skip=skip, limit=limit))


@router.get("/work/{id}", **needs("viewer"), summary="One work, from the bucket or the results")
async def get_work(buckets: Verbs, id: str, request: Request,
                   wait: Annotated[float, Query(ge=0, le=LONGEST_WAIT, allow_inf_nan=False)] = 0,
                   ) -> Response:
    """With ``wait`` (seconds, up to 30), a work that has not finished yet is answered
    as soon as it finishes, or as it is when the time is up."""
    state = request.app.state
    seconds = min(wait, state.settings.max_wait)
    return json_reply(await state.finishes.read(buckets.get, id, seconds))


@router.get("/work/{id}/why", **needs("viewer"),
            summary="Why a queued work is not running, most decisive reason first")
def why(buckets: Verbs, id: str) -> Any:
    """``{"id", "status", "reasons": [{"code", "message", ...}]}``; the codes are
    ``paused``, ``backoff``, ``no-runner``, ``busy`` and ``behind``; no reasons for a
    work that is not queued, or that a runner may take next."""
    return json_reply(buckets.why(id))


#: Seconds between two looks at a followed log.
FOLLOW_EVERY = 0.5


@router.get("/work/{id}/logs", **needs("viewer"), response_class=Response,
            responses={200: {"content": {"text/plain": {}}}},
            summary="What an attempt of a work wrote, as text; followed while it runs")  # fmt: skip
async def logs(buckets: Verbs, id: str, request: Request,
               attempt: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
               after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
               follow: bool = False) -> Response:  # fmt: skip
    """The end of the log (the server keeps the last ``WORKFLOW_LOG_LIMIT`` bytes of
    each attempt's; the whole log is in the archive, named by ``X-Log-File``) of
    ``attempt`` (default: the latest with a log), or only what came after ``after``
    (an earlier answer's ``X-Log-Written``). With ``follow=1`` the answer goes on as
    the attempt writes, and ends when it has ended. Headers: ``X-Log-Attempt``,
    ``X-Log-Attempts`` (the attempts with a log), ``X-Log-Size`` (bytes it wrote),
    ``X-Log-Written``, ``X-Log-Running`` (1 while it runs), ``X-Log-File``. Asked
    for ``application/json`` (and not text), the same as one JSON object (``id``,
    ``attempt``, ``attempts``, ``size``, ``skipped``, ``written``, ``text``,
    ``running``, ``file``)."""
    log = await run_in_threadpool(buckets.logs, id, attempt, after)
    accept = request.headers.get("accept", "")
    if not follow and "application/json" in accept and "text/plain" not in accept:
        return json_reply(log)
    headers = {"X-Log-Attempt": str(log["attempt"]),
               "X-Log-Attempts": ",".join(map(str, log["attempts"])),
               "X-Log-Size": str(log["size"]), "X-Log-Written": str(log["written"]),
               "X-Log-Running": "1" if log["running"] else "0", "Cache-Control": "no-store"}
    if log["file"]:
        headers["X-Log-File"] = quote(log["file"])
    if not (follow and log["running"]):
        return Response(log["text"], media_type="text/plain; charset=utf-8", headers=headers)
    return StreamingResponse(_following(buckets, log), headers=headers,
                             media_type="text/plain; charset=utf-8")  # fmt: skip


async def _following(buckets: Buckets, log: dict[str, Any]) -> AsyncIterator[str]:
    """The log's text, then what it writes, until its attempt has ended."""
    yield log["text"]
    while log["running"]:
        await asyncio.sleep(FOLLOW_EVERY)
        log = await run_in_threadpool(buckets.logs, log["id"], log["attempt"], log["written"])
        if log["text"]:
            yield log["text"]


@router.post("/work/{id}/heartbeat", **needs("runner"),
             summary="Extend the lease of a running attempt")
def heartbeat(buckets: Verbs, id: str, body: Heartbeat, caller: Calling) -> Response:
    return json_reply(buckets.heartbeat(id, body.attempt, body.lease, holder(caller)))


@router.post("/work/{id}/complete", **needs("runner"),
             summary="Report the outcome of a running attempt")
def complete(buckets: Verbs, id: str, body: Outcome, caller: Calling) -> Response:
    outcome = body.model_copy(update={"id": id})
    return json_reply(buckets.complete(outcome, holder=holder(caller), by=caller.name))


@router.post("/work/{id}/release", **needs("runner"),
             summary="Hand a running attempt back, uncounted")
def release(buckets: Verbs, id: str, body: Release, caller: Calling) -> Response:
    return json_reply(buckets.release(id, body.attempt, body.reason, holder(caller),
                                      caller.name))  # fmt: skip


@router.post("/work/{id}/cancel", **needs("operator"), summary="Cancel a queued or running work")
def cancel(buckets: Verbs, id: str, request: Request) -> Response:
    return json_reply(buckets.cancel(id, by=who(request)))


@router.post("/work/{id}/retry", **needs("operator"),
             summary="Queue a finished work again as a new, linked work")
def retry(buckets: Verbs, id: str, request: Request,
          body: Annotated[RetryRequest | None, Body()] = None) -> Response:  # fmt: skip
    return json_reply(buckets.retry(id, body.parameters if body else None,
                                    from_failure=bool(body and body.from_failure),
                                    by=who(request)))  # fmt: skip


@router.patch("/work/{id}", **needs("operator"),
              summary="Change priority or retries of a queued work")
def change(buckets: Verbs, id: str, body: Change, request: Request) -> Response:
    return json_reply(buckets.change(id, priority=body.priority, retries=body.retries,
                                     by=who(request)))  # fmt: skip


@router.post("/work/delete", **needs("operator"),
             summary="Delete works by id; says how many existed")
def delete_many(buckets: Verbs, body: Delete) -> dict[str, int]:
    return {"deleted": buckets.delete(body.ids)}


# -- counts and pipelines ---------------------------------------------------------------


@router.get("/counts", **needs("viewer"),
            summary="Counts per pipeline and status, buckets and results")
def counts(buckets: Verbs) -> Any:
    return buckets.counts()


@router.get("/pipelines", **needs("viewer"),
            summary="Every known pipeline with its settings and counts")
def pipelines(buckets: Verbs) -> Any:
    return buckets.pipelines()


@router.get("/pipelines/{pipeline}", **needs("viewer"), summary="Settings of one pipeline")
def get_pipeline(buckets: Verbs, pipeline: str) -> PipelineSettings:
    return buckets.settings(pipeline)


@router.patch("/pipelines/{pipeline}", **needs("operator"),
              summary="Change the defaults, pause state or alert rules of a pipeline")
def configure(buckets: Verbs, pipeline: str, request: Request,
              changes: Annotated[dict[str, Any], Body()]) -> PipelineSettings:  # fmt: skip
    return buckets.configure(pipeline, changes, by=who(request))


@router.post("/pipelines/{pipeline}/pause", **needs("operator"),
             summary="Hand out no work of this pipeline")
def pause(buckets: Verbs, pipeline: str, request: Request) -> PipelineSettings:
    return buckets.configure(pipeline, {"paused": True}, by=who(request))


@router.post("/pipelines/{pipeline}/resume", **needs("operator"),
             summary="Hand out work of this pipeline again")
def resume(buckets: Verbs, pipeline: str, request: Request) -> PipelineSettings:
    return buckets.configure(pipeline, {"paused": False}, by=who(request))


@router.post("/bulk", **needs("operator"),
             summary="Act on every bucket work a filter matches, count confirmed")
def bulk(buckets: Verbs, body: Bulk, request: Request) -> BulkReply:
    return buckets.bulk(body, by=who(request))
