"""CHIME/FRB's buckets API (``/buckets`` of ``workflow-core``), with its wire semantics
expressed by the bucket verbs; everything CHIME-specific about buckets is here.

CHIME clients send whole works (``PUT /work``) instead of calling verbs: a running work
sent back as ``success`` or ``failure`` completes its attempt; one sent back with its
status unchanged edits fields. The ``attempt`` the client got at withdraw is the fence,
so a late update from a runner whose lease expired is refused with 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from workflow.buckets.operators import action
from workflow.buckets.verbs import Buckets
from workflow.errors import Forbidden, InvalidWork, NotFound, TransitionConflict
from workflow.filters import apply_projection, check_filter, check_projection
from workflow.service.access import Caller, holder, needs
from workflow.service.buckets_api import Calling, Verbs
from workflow.service.dispatch import Fast, json_reply
from workflow.tokens import allows
from workflow.wire import Deposit, DepositOptions, Outcome, View
from workflow.wire import Query as Filter
from workflow.work import CHIME_FIELDS, TRANSITIONS, Work, check_results_size, parse_work

router = APIRouter(tags=["buckets"])
fast = Fast(router)  # the deposit is hot: an instrument may deposit many times a second
#: A request body of one work or a list of them.
Works = Annotated[Any, Body()]


@fast.post("/work", role="runner", summary="Deposit works (CHIME)")
def deposit(buckets: Buckets, body: Deposit, caller: Caller, options: DepositOptions) -> Any:
    """One work or a list of them; the reply is ``true``, or with ``return_ids`` the ids
    in the order given. Depositing a work again (same id, same content) is harmless."""
    ids = buckets.deposit(body.works, user=caller.name)
    return ids if options.return_ids else True


@router.post("/work/withdraw", **needs("runner"),
             summary="Claim one work matching a Mongo-style filter (CHIME)")
def withdraw(buckets: Verbs, query: Annotated[dict[str, Any], Body()],
             caller: Calling) -> Response:  # fmt: skip
    pipelines, rest = split_pipelines(check_filter(query))
    found = buckets.claim(pipelines, rest, limit=1, by=caller.name)
    return json_reply(found[0] if found else None)


@router.put("/work", **needs("runner"), summary="Update works by id (CHIME)")
def update(buckets: Verbs, works: Works, caller: Calling) -> Any:
    """Each work is checked before any is changed, so a batch changes all or nothing
    but for a conflict that arises while it is applied (409, naming the work)."""
    update_all(buckets, _many(works), by=caller.name, operator=allows(caller.role, "operator"),
               holder=holder(caller))  # fmt: skip
    return True


@router.delete("/work", **needs("operator"), summary="Delete works by id (CHIME)")
def delete(buckets: Verbs, ids: Annotated[list[str], Query(min_length=1)]) -> Any:
    if buckets.delete(ids) == 0:
        raise NotFound(f"no work with any of these ids in the bucket: {', '.join(ids[:10])}",
                       field="ids")  # fmt: skip
    return True


@router.post("/view", **needs("viewer"),
             summary="Works matching a Mongo-style filter, newest first (CHIME)")
def view(buckets: Verbs, body: View) -> Response:
    projection = check_projection(body.projection)
    docs = buckets.view(check_filter(body.query), skip=body.skip, limit=body.limit or None)
    return json_reply([apply_projection(doc, projection) for doc in docs])


@router.get("/status", **needs("viewer"), summary="Counts over all pipelines (CHIME)")
def status(buckets: Verbs) -> Any:
    return status_counts(buckets.counts().values())


@router.get("/status/details/{pipeline}", **needs("viewer"),
            summary="Counts of one pipeline (CHIME)")
def status_details(buckets: Verbs, pipeline: str) -> Any:
    return status_counts([buckets.counts().get(pipeline, {})])


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
    return buckets.count({"creation": {"$lt": buckets.clock() - days * 86400}})

#: Fields a CHIME update may not rewrite: the server owns them.
_SERVER_OWNED = frozenset({"id", "status", "attempt", "start", "lease", "history",
                           "not_before"})  # fmt: skip
#: What a runner may change on a running work it holds: its report.
_REPORTED = frozenset({"results", "products", "plots", "stop"})
STATUS_KEYS = ("total", "queued", "running", "success", "failure")


def split_pipelines(query: Filter) -> tuple[list[str] | None, Filter]:
    """Take the ``pipeline`` condition out of a withdraw filter.

    Returns:
        The pipelines named (None when the filter names none) and the rest.
    """
    rest = dict(query)
    wanted = rest.pop("pipeline", None)
    if wanted is None:
        return None, rest
    if isinstance(wanted, str):
        return [wanted], rest
    if isinstance(wanted, dict) and set(wanted) <= {"$in", "$eq"}:
        names = list(wanted.get("$in", []))
        if "$eq" in wanted:
            names = [wanted["$eq"]] if not names or wanted["$eq"] in names else []
        if all(isinstance(n, str) for n in names):
            return names, rest
    raise InvalidWork("query.pipeline: give a name, {'$in': [names]} or {'$eq': name}",
                      field="query.pipeline")  # fmt: skip


def update_all(buckets: Buckets, works: list[Any], *, by: str | None = None,
               operator: bool = True, holder: str | None = None) -> None:
    """Apply the works sent by ``PUT /work``: each is checked before any is applied, and
    all are applied in one batch.

    A runner (``operator`` False) only reports: it may change a running work's
    ``results``, ``products``, ``plots`` and ``stop``, or end its attempt, and only on a
    work its token (``holder``) claimed. Every other change needs an operator and goes
    into the work's history under ``by``.

    Raises:
        InvalidWork: not a valid work, or no id.
        NotFound: no such work.
        TransitionConflict: stale attempt, or a status change that is not allowed.
        Forbidden: a runner's change that needs an operator, or on another's work.
        ResultsTooLarge: results over the limit.
    """
    planned = [_plan(buckets, raw, by, operator, holder) for raw in works]
    with buckets.batch():
        for step in planned:
            step()


def _plan(buckets: Buckets, raw: Any, by: str | None, operator: bool, holder: str | None
          ) -> Callable[[], Any]:  # fmt: skip
    """Check one work of ``PUT /work``; return what applies it."""
    work = parse_work(raw, "works[]")
    if work.id is None:
        raise InvalidWork("works[].id: an update names the work by id", field="id")
    id, payload = work.id, work.payload()
    check_results_size(work.results, buckets.results_limit)
    try:
        stored = buckets.get_active(id)
    except NotFound as missing:
        try:
            finished = buckets.get(id)  # not in the bucket: finished, or nowhere
        except NotFound:
            raise missing from None
        if (finished["attempt"], finished["status"]) == (work.attempt, work.status):
            return lambda: None  # a repeated final update: already recorded
        raise
    if stored["attempt"] != work.attempt:
        raise TransitionConflict(
            f"work {id} is at attempt {stored['attempt']}; attempt {work.attempt} is stale",
            field="attempt", id=id, attempt=stored["attempt"], status=stored["status"],
        )  # fmt: skip
    if work.status != stored["status"]:
        move = _MOVES.get((stored["status"], work.status))
        if move is None:
            why = ("the status table forbids it" if work.status not in TRANSITIONS[stored["status"]]
                   else "use withdraw or cancel for that")  # fmt: skip
            raise TransitionConflict(
                f"work {id} cannot go from {stored['status']} to {work.status}: {why}",
                field="status", id=id, status=stored["status"],
            )  # fmt: skip
        if not operator:
            buckets.held(stored, holder)
        return lambda: move(buckets, work, payload, by, holder if not operator else None)
    # The same status: the client edits the fields it sent that differ.
    edits = {k: payload[k] for k in CHIME_FIELDS
             if k in raw and k not in _SERVER_OWNED and payload[k] != stored.get(k)}  # fmt: skip
    if not edits:
        return lambda: None
    if not operator:
        others = sorted(set(edits) - _REPORTED)
        if others or stored["status"] != "running":
            raise Forbidden(f"work {id}: a runner token reports only results, products, plots "
                            f"and stop of a running work it holds; changing "
                            f"{', '.join(others) or 'a ' + stored['status'] + ' work'} "
                            "needs an operator", field=others[0] if others else "status",
                            needs="operator")  # fmt: skip
        buckets.held(stored, holder)
    new = parse_work({**stored, **edits}, "works[]").payload()
    if operator:
        changes = {k: "(replaced)" if k in _REPORTED else v for k, v in edits.items()}
        new["history"] = [*stored.get("history", []), action("edit", buckets.clock(), by, changes)]
    return lambda: buckets.move(stored, new)


def _complete(buckets: Buckets, work: Work, payload: dict[str, Any], by: str | None,
              holder: str | None) -> None:  # fmt: skip
    # The client sends its whole state: replace results, products and plots.
    outcome = Outcome(id=str(work.id), attempt=work.attempt, status=work.status,  # type: ignore[arg-type]
                      results=payload["results"], products=payload["products"],
                      plots=payload["plots"], stop=work.stop)  # fmt: skip
    buckets.complete(outcome, merge=False, holder=holder, by=by)


def _release(buckets: Buckets, work: Work, payload: dict[str, Any], by: str | None,
             holder: str | None) -> None:  # fmt: skip
    buckets.release(str(work.id), work.attempt, "requeued-by-client", holder=holder, by=by)


#: The status changes a whole-work update may make, and the verb that makes each.
_MOVES: dict[tuple[str, str], Callable[[Buckets, Work, dict[str, Any], str | None,
                                        str | None], None]] = {
    ("running", "success"): _complete,
    ("running", "failure"): _complete,
    ("running", "queued"): _release,
}
assert all(new in TRANSITIONS[old] for old, new in _MOVES)


def _many(works: Any) -> list[Any]:
    """A body of one work or a list of them, as a list.

    Raises:
        InvalidWork: neither a work nor a non-empty list.
    """
    if isinstance(works, dict):
        return [works]
    if not isinstance(works, list) or not works:
        raise InvalidWork("send a non-empty JSON array of works", field="works")
    return works


def status_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """CHIME's five status counts (in CHIME's key order) summed over ``counts``."""
    out = dict.fromkeys(STATUS_KEYS, 0)
    for per_status in counts:
        for key in STATUS_KEYS[1:]:
            out[key] += per_status.get(key, 0)
    out["total"] = sum(out[key] for key in STATUS_KEYS[1:])
    return out
