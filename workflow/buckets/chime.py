"""CHIME/FRB wire semantics expressed with the bucket verbs.

CHIME clients send whole works (``PUT /work``) instead of calling verbs: a running work
sent back as ``success`` or ``failure`` completes its attempt; one sent back with its
status unchanged edits fields. The ``attempt`` the client got at withdraw is the fence,
so a late update from a runner whose lease expired is refused with 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from workflow.buckets.operators import action
from workflow.buckets.verbs import Buckets
from workflow.errors import Forbidden, InvalidWork, NotFound, TransitionConflict
from workflow.store.base import Query
from workflow.work import CHIME_FIELDS, TRANSITIONS, Work, check_results_size, parse_work

#: Fields a CHIME update may not rewrite: the server owns them.
_SERVER_OWNED = frozenset({"id", "status", "attempt", "start", "lease", "history",
                           "not_before"})  # fmt: skip
#: What a runner may change on a running work it holds: its report.
_REPORTED = frozenset({"results", "products", "plots", "stop"})
STATUS_KEYS = ("total", "queued", "running", "success", "failure")


def split_pipelines(query: Query) -> tuple[list[str] | None, Query]:
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
    with buckets.store.batch():
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
    except NotFound:
        finished = buckets.store.results.get(id)
        if finished and (finished["attempt"], finished["status"]) == (work.attempt, work.status):
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
    expect = {"status": stored["status"], "attempt": stored["attempt"]}
    return lambda: buckets.store.work.swap(id, expect, new)


def _complete(buckets: Buckets, work: Work, payload: dict[str, Any], by: str | None,
              holder: str | None) -> None:  # fmt: skip
    # The client sends its whole state: replace results, products and plots.
    buckets.complete(str(work.id), work.attempt, work.status, results=payload["results"],
                     products=payload["products"], plots=payload["plots"], stop=work.stop,
                     merge=False, holder=holder, by=by)  # fmt: skip


def _release(buckets: Buckets, work: Work, payload: dict[str, Any], by: str | None,
             holder: str | None) -> None:  # fmt: skip
    buckets.release(str(work.id), work.attempt, reason="requeued-by-client", holder=holder,
                    by=by)  # fmt: skip


#: The status changes a whole-work update may make, and the verb that makes each.
_MOVES: dict[tuple[str, str], Callable[[Buckets, Work, dict[str, Any], str | None,
                                        str | None], None]] = {
    ("running", "success"): _complete,
    ("running", "failure"): _complete,
    ("running", "queued"): _release,
}
assert all(new in TRANSITIONS[old] for old, new in _MOVES)


def listed(works: Any) -> list[Any]:
    """``works`` if it is a non-empty list, else ``InvalidWork``."""
    if not isinstance(works, list) or not works:
        raise InvalidWork("send a non-empty JSON array of works", field="works")
    return works


def delete(buckets: Buckets, ids: list[str]) -> bool:
    """Delete works by id; at least one must exist.

    Raises:
        NotFound: none of the ids is in the bucket.
    """
    if buckets.delete(ids) == 0:
        raise NotFound(f"no work with any of these ids in the bucket: {', '.join(ids[:10])}",
                       field="ids")  # fmt: skip
    return True


def status(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """CHIME's five status counts (in CHIME's key order) summed over ``counts``."""
    out = dict.fromkeys(STATUS_KEYS, 0)
    for per_status in counts:
        for key in STATUS_KEYS[1:]:
            out[key] += per_status.get(key, 0)
    out["total"] = sum(out[key] for key in STATUS_KEYS[1:])
    return out
