"""``/buckets``: CHIME's buckets API, plus leases, batches, history and operator actions.

Route functions only translate HTTP to bucket verbs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from workflow import jsonsafe
from workflow.buckets import Buckets, PipelineSettings, chime
from workflow.buckets.bulk import act_on_bucket
from workflow.buckets.verbs import plain_query
from workflow.filters import apply_projection, check_filter, check_projection
from workflow.service.access import Caller, current, holder, needs, who
from workflow.tokens import allows
from workflow.work import MAX_INT, ErrorInfo, Int64, NodeEntry

router = APIRouter(tags=["buckets"])


async def _buckets(request: Request) -> Buckets:
    # async: a plain function would cost a trip through the thread pool per request.
    return request.app.state.buckets  # type: ignore[no-any-return]


def json_reply(content: Any) -> Response:
    """A JSON response written by orjson (``jsonsafe.dumps``), skipping FastAPI's slower
    encoder; whatever is stored can be written."""
    return Response(jsonsafe.dumps(content), media_type="application/json")


Verbs = Annotated[Buckets, Depends(_buckets)]
Calling = Annotated[Caller, Depends(current)]
Works = Annotated[Any, Body()]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a no-op, and
    non-finite numbers (the edge refuses them in bodies; this holds for in-process use)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class View(BaseModel):
    """CHIME's view request: a filter, a projection and a page."""

    query: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] = Field(default_factory=dict)
    skip: int = Field(default=0, ge=0, le=MAX_INT)
    limit: int | None = Field(default=100, ge=0, le=MAX_INT)


class Withdraw(Strict):
    """Claim up to ``limit`` works of ``pipelines`` matching every given filter."""

    pipelines: list[str] | None = Field(default=None, max_length=100)
    site: str | None = None
    tags: list[str] | None = None
    event: list[Int64] | None = None
    user: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    parent: list[str] | None = None
    limit: int = Field(default=1, ge=1, le=1000)
    lease: float | None = Field(default=None, gt=0, le=259200)
    runner: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=200)


class Heartbeat(Strict):
    """Extend the lease of a running attempt."""

    attempt: int = Field(ge=1, le=MAX_INT)
    lease: float | None = Field(default=None, gt=0, le=259200)


class HeldAttempt(Strict):
    """A running attempt, by work id and attempt number."""

    id: str
    attempt: int = Field(ge=1, le=MAX_INT)


class HeartbeatMany(Strict):
    """Extend the leases of several running attempts."""

    works: list[HeldAttempt] = Field(min_length=1, max_length=1000)
    lease: float | None = Field(default=None, gt=0, le=259200)


class Complete(Strict):
    """The outcome of a running attempt."""

    attempt: int = Field(ge=1, le=MAX_INT)
    status: Literal["success", "failure", "retry"]
    results: dict[str, Any] | None = None
    products: list[str] | None = None
    plots: list[str] | None = None
    error: ErrorInfo | None = None
    started: float | None = None
    stop: float | None = None
    retry_delay: float | None = Field(default=None, ge=0, le=86400)
    reason: str | None = Field(default=None, max_length=200)
    nodes: list[NodeEntry] | None = Field(default=None, max_length=10_000)


class CompleteOne(Complete):
    """One outcome in a batch."""

    id: str


class CompleteMany(Strict):
    """Outcomes of several attempts, recorded one by one."""

    works: list[CompleteOne] = Field(min_length=1, max_length=1000)


class Exchange(Strict):
    """Outcomes to record, then works to claim: a runner's turn in one request."""

    complete: list[CompleteOne] = Field(default_factory=list, max_length=1000)
    withdraw: Withdraw


class Release(Strict):
    """Hand a running attempt back to the queue without using up an attempt."""

    attempt: int = Field(ge=1, le=MAX_INT)
    reason: str = Field(default="released", max_length=200)


class Change(Strict):
    """New priority and/or retries for a queued work."""

    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)


# -- CHIME ------------------------------------------------------------------------------


@router.post("/work", **needs("runner"), summary="Deposit works (CHIME)")
def deposit(buckets: Verbs, works: Works, caller: Calling, return_ids: bool = False) -> Any:
    ids = buckets.deposit([works] if isinstance(works, dict) else works, user=caller.name)
    return ids if return_ids else True


@router.post("/work/withdraw", **needs("runner"),
             summary="Claim one work matching a Mongo-style filter (CHIME)")
def withdraw_chime(buckets: Verbs, query: Annotated[dict[str, Any], Body()],
                   caller: Calling) -> Any:  # fmt: skip
    pipelines, rest = chime.split_pipelines(check_filter(query))
    found = buckets.withdraw(pipelines, query=rest, limit=1, by=caller.name)
    return json_reply(found[0] if found else None)


@router.put("/work", **needs("runner"), summary="Update works by id (CHIME)")
def update(buckets: Verbs, works: Works, caller: Calling) -> Any:
    """Each work is checked before any is changed, so a batch changes all or nothing
    but for a conflict that arises while it is applied (409, naming the work)."""
    chime.update_all(buckets, chime.listed([works] if isinstance(works, dict) else works),
                     by=caller.name, operator=allows(caller.role, "operator"),
                     holder=holder(caller))  # fmt: skip
    return True


@router.delete("/work", **needs("operator"), summary="Delete works by id (CHIME)")
def delete(buckets: Verbs, ids: Annotated[list[str], Query(min_length=1)]) -> Any:
    return chime.delete(buckets, ids)


class Delete(Strict):
    """Works to delete from the buckets."""

    ids: list[str] = Field(min_length=1, max_length=10_000)


@router.post("/work/delete", **needs("operator"),
             summary="Delete works by id; says how many existed")
def delete_many(buckets: Verbs, body: Delete) -> dict[str, int]:
    return {"deleted": buckets.delete(body.ids)}


@router.post("/view", **needs("viewer"),
             summary="Works matching a Mongo-style filter, newest first (CHIME)")
def view(buckets: Verbs, body: View) -> Any:
    query = check_filter(body.query)
    projection = check_projection(body.projection)
    docs = buckets.store.work.find(query, sort=[("creation", -1)], skip=body.skip,
                                   limit=body.limit or None)  # fmt: skip
    return [apply_projection(doc, projection) for doc in docs]


@router.get("/status", **needs("viewer"), summary="Counts over all pipelines (CHIME)")
def status(buckets: Verbs) -> Any:
    return chime.status(buckets.counts().values())


@router.get("/status/details/{pipeline}", **needs("viewer"),
            summary="Counts of one pipeline (CHIME)")
def status_details(buckets: Verbs, pipeline: str) -> Any:
    return chime.status([buckets.counts().get(pipeline, {})])


@router.get("/status/pipelines", **needs("viewer"), summary="Pipelines that hold work (CHIME)")
def status_pipelines(buckets: Verbs) -> Any:
    return sorted(buckets.counts())


@router.get("/audit/failed", **needs("runner"),
            summary="Failed works requeued (CHIME; always 0 here)")
def audit_failed(buckets: Verbs) -> Any:
    # The server requeues failures itself, so there is never any left to requeue.
    return 0


@router.get("/audit/expired", **needs("runner"), summary="Expire lost leases now (CHIME)")
def audit_expired(buckets: Verbs) -> Any:
    return buckets.expire(limit=10_000)


@router.get("/audit/stale/{days}", **needs("viewer"),
            summary="Works in buckets older than days (CHIME)")
def audit_stale(buckets: Verbs, days: float) -> Any:
    return buckets.store.work.count({"creation": {"$lt": buckets.clock() - days * 86400}})


# -- ours -------------------------------------------------------------------------------


def _claiming(body: Withdraw, caller: Caller) -> dict[str, Any]:
    """The keyword arguments of ``Buckets.withdraw`` for a withdraw request."""
    query = plain_query(**body.model_dump(include={"site", "user", "priority", "tags",
                                                   "event", "parent"}))  # fmt: skip
    return {"pipelines": body.pipelines, "query": query, "limit": body.limit,
            "lease": body.lease, "runner": body.runner, "host": body.host,
            "by": caller.name}  # fmt: skip


@router.post("/withdraw", **needs("runner"), summary="Claim up to limit works, with a lease")
def withdraw(buckets: Verbs, body: Withdraw, caller: Calling) -> Any:
    return json_reply(buckets.withdraw(**_claiming(body, caller)))


@router.post("/exchange", **needs("runner"),
             summary="Report outcomes and claim more works in one request")
def exchange(buckets: Verbs, body: Exchange, caller: Calling) -> Response:
    """``complete`` is recorded first, each outcome on its own as in ``/complete``; then
    ``withdraw`` claims as ``/withdraw`` does, in the same transaction where the store
    can. The reply: ``{"completed": [per outcome, as /complete], "works": [...]}``."""
    outcomes = [item.model_dump(exclude_none=True) for item in body.complete]
    completed, works = buckets.exchange(outcomes, holder=holder(caller),
                                        **_claiming(body.withdraw, caller))  # fmt: skip
    return json_reply({"completed": completed, "works": works})


@router.get("/work", **needs("viewer"), summary="Works in the buckets, newest first")
def list_work(
    buckets: Verbs,
    pipeline: Annotated[list[str] | None, Query()] = None,
    status: Annotated[list[Literal["queued", "running"]] | None, Query()] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    query: dict[str, Any] = {}
    if pipeline:
        query["pipeline"] = {"$in": pipeline}
    if status:
        query["status"] = {"$in": status}
    return buckets.store.work.find(query, sort=[("creation", -1)], skip=skip, limit=limit)


@router.get("/work/{id}", **needs("viewer"), summary="One work, from the bucket or the results")
def get_work(buckets: Verbs, id: str) -> Any:
    return json_reply(buckets.get(id))


@router.post("/work/{id}/heartbeat", **needs("runner"),
             summary="Extend the lease of a running attempt")
def heartbeat(buckets: Verbs, id: str, body: Heartbeat, caller: Calling) -> Any:
    return buckets.heartbeat(id, body.attempt, body.lease, holder(caller))


@router.post("/work/{id}/complete", **needs("runner"),
             summary="Report the outcome of a running attempt")
def complete(buckets: Verbs, id: str, body: Complete, caller: Calling) -> Any:
    error = body.error.model_dump() if body.error else None
    nodes = [n.model_dump(mode="json") for n in body.nodes] if body.nodes is not None else None
    return buckets.complete(id, body.attempt, body.status, results=body.results,
                            products=body.products, plots=body.plots, error=error,
                            stop=body.stop, started=body.started,
                            retry_delay=body.retry_delay, reason=body.reason,
                            nodes=nodes, holder=holder(caller), by=caller.name)  # fmt: skip


@router.post("/heartbeat", **needs("runner"),
             summary="Extend the leases of several running attempts at once")
def heartbeat_many(buckets: Verbs, body: HeartbeatMany, caller: Calling) -> Response:
    """Each lease is extended on its own: the reply says, per work, ``ok`` (with the new
    ``expires``) or the error (as in a single call's error body), in the order sent."""
    works = [item.model_dump() for item in body.works]
    return json_reply(buckets.heartbeat_many(works, body.lease, holder(caller)))


@router.post("/complete", **needs("runner"),
             summary="Report the outcomes of several attempts at once")
def complete_many(buckets: Verbs, body: CompleteMany, caller: Calling) -> Response:
    """Each outcome is recorded on its own: the reply says, per work, ``ok`` or the error
    (as in a single call's error body), in the order sent."""
    outcomes = [item.model_dump(exclude_none=True) for item in body.works]
    return json_reply(buckets.complete_many(outcomes, holder(caller), caller.name))


@router.post("/work/{id}/release", **needs("runner"),
             summary="Hand a running attempt back, uncounted")
def release(buckets: Verbs, id: str, body: Release, caller: Calling) -> Any:
    return buckets.release(id, body.attempt, body.reason, holder(caller), caller.name)


@router.post("/work/{id}/cancel", **needs("operator"), summary="Cancel a queued or running work")
def cancel(buckets: Verbs, id: str, request: Request) -> Any:
    return buckets.cancel(id, by=who(request))


class RetryRequest(Strict):
    """Queue a finished work again, with these parameters instead of its own if given."""

    parameters: dict[str, Any] | None = None


@router.post("/work/{id}/retry", **needs("operator"),
             summary="Queue a finished work again as a new, linked work")
def retry(buckets: Verbs, id: str, request: Request,
          body: Annotated[RetryRequest | None, Body()] = None) -> Any:  # fmt: skip
    parameters = body.parameters if body else None
    return json_reply(buckets.retry(id, parameters, by=who(request)))


@router.patch("/work/{id}", **needs("operator"),
              summary="Change priority or retries of a queued work")
def change(buckets: Verbs, id: str, body: Change, request: Request) -> Any:
    return buckets.change(id, priority=body.priority, retries=body.retries, by=who(request))


@router.get("/counts", **needs("viewer"),
            summary="Counts per pipeline and status, buckets and results")
def counts(buckets: Verbs) -> Any:
    return buckets.counts()


@router.get("/pipelines", **needs("viewer"),
            summary="Every known pipeline with its settings and counts")
def pipelines(buckets: Verbs) -> Any:
    counts = buckets.counts()
    names = sorted(set(counts) | set(buckets.store.settings()))
    return [{"name": name, "counts": counts.get(name, {}),
             **buckets.settings(name).model_dump()} for name in names]  # fmt: skip


@router.get("/pipelines/{pipeline}", **needs("viewer"), summary="Settings of one pipeline")
def get_pipeline(buckets: Verbs, pipeline: str) -> PipelineSettings:
    return buckets.settings(pipeline)


@router.patch("/pipelines/{pipeline}", **needs("operator"),
              summary="Change defaults or pause state of a pipeline")
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


# -- bulk -------------------------------------------------------------------------------


class BulkFilter(Strict):
    """Which bucket works a bulk action is about; every field narrows it."""

    pipeline: list[str] | None = Field(default=None, max_length=100)
    status: list[Literal["queued", "running"]] | None = None
    site: str | None = None
    user: str | None = None
    tags: list[str] | None = Field(default=None, max_length=100)
    priority: int | None = Field(default=None, ge=1, le=5)


class Bulk(Strict):
    """Cancel, or change priority and retries of, every work the filter matches.

    Without ``confirm`` nothing is done and the reply says how many works match; with
    it, the action runs only if no more than ``confirm`` works match."""

    filter: BulkFilter = Field(default_factory=BulkFilter)
    action: Literal["cancel", "change"]
    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)
    confirm: int | None = Field(default=None, ge=0, le=MAX_INT)


class BulkReply(BaseModel):
    """What a bulk action matched, did and skipped (with the first reasons)."""

    matched: int
    done: int
    skipped: int
    reasons: list[dict[str, str]]


@router.post("/bulk", **needs("operator"),
             summary="Act on every bucket work a filter matches, count confirmed")
def bulk(buckets: Verbs, body: Bulk, request: Request) -> BulkReply:
    wanted = body.filter
    query = plain_query(site=wanted.site, user=wanted.user, priority=wanted.priority,
                        tags=wanted.tags)  # fmt: skip
    for name, values in (("pipeline", wanted.pipeline), ("status", wanted.status)):
        if values:
            query[name] = {"$in": list(values)}
    return BulkReply(**act_on_bucket(buckets, query, body.action, confirm=body.confirm,
                                     by=who(request), priority=body.priority,
                                     retries=body.retries))  # fmt: skip
