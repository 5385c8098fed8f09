"""The bucket verbs, written once over any ``Store``.

deposit → withdraw (claim) → heartbeat* → complete; or the lease expires and the
server records the attempt as lost. A failed or lost attempt is queued again, after a
backoff, while attempts remain; otherwise the work moves to the results with its full
history, in one atomic step. Every change is a compare-and-set on status and attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from workflow import policy
from workflow.buckets.settings import (
    CHANGEABLE,
    HISTORY,
    PipelineSettings,
    parse_settings,
    with_defaults,
)
from workflow.errors import (
    DuplicateWork,
    InvalidWork,
    LimitExceeded,
    NotFound,
    TransitionConflict,
    WorkflowError,
)
from workflow.store.base import Claim, Doc, Query, Store
from workflow.work import (
    RESULTS_LIMIT,
    ActionEntry,
    AttemptEntry,
    ErrorInfo,
    NodeEntry,
    check_results_size,
    new_id,
    parse_work,
)

#: Fields that identify a deposit; a retried deposit with the same id repeats them.
_IDENTITY = ("pipeline", "function", "command", "parameters", "user", "site", "creation")
MAX_BATCH = 10_000
#: What a retried work takes over from the original.
_REPEATED = ("pipeline", "function", "command", "parameters", "tags", "event", "site", "user",
             "priority", "retries", "timeout", "backoff", "config", "notify")  # fmt: skip


class Buckets:
    """Queued and running work over a ``Store``.

    Args:
        store: The backend.
        results_limit: Largest accepted ``results``, in bytes of JSON.
        clock: Time source (seconds since the epoch); tests pass a fake one.
    """

    def __init__(self, store: Store, *, results_limit: int = RESULTS_LIMIT,
                 clock: Callable[[], float] = time.time):  # fmt: skip
        self.store = store
        self.results_limit = results_limit
        self.clock = clock

    # -- deposit -------------------------------------------------------------------------

    def deposit(self, works: list[dict[str, Any]]) -> list[str]:
        """Queue new works; return their ids in input order.

        A work may bring its own ``id``: depositing the same work again (same id, same
        pipeline, parameters, function, command, user, site and creation) is a no-op
        that returns the id, so a client may retry a deposit whose reply was lost.

        Raises:
            InvalidWork: a work is invalid; nothing is deposited.
            DuplicateWork: an id is taken by a different work; nothing is deposited.
            ResultsTooLarge: a work carries oversized results; nothing is deposited.
        """
        if not isinstance(works, list) or not works:
            raise InvalidWork("deposit a non-empty list of works", field="works")
        if len(works) > MAX_BATCH:
            raise LimitExceeded(f"at most {MAX_BATCH} works per deposit, not {len(works)}",
                                field="works", limit=MAX_BATCH)  # fmt: skip
        settings = self.store.settings()
        docs = []
        for index, raw in enumerate(works):
            where = f"works[{index}]"
            if not isinstance(raw, dict):
                raise InvalidWork(f"{where}: a work is a JSON object", field=where)
            defaults = settings.get(str(raw.get("pipeline")), {}).get("defaults", {})
            work = parse_work(with_defaults(raw, defaults), where)
            check_results_size(work.results, self.results_limit)
            doc = work.payload()
            doc.update(id=work.id or new_id(), status="queued", attempt=0, start=None,
                       stop=None, lease=None, not_before=None, history=[])  # fmt: skip
            docs.append(doc)
        self._check_ids(docs)
        clashes = self.store.work.insert(docs)
        for doc, existing in zip(docs, clashes, strict=True):
            if existing is not None and not _same_deposit(doc, existing):
                raise DuplicateWork(f"id {doc['id']} belongs to a different work", field="id")
        return [doc["id"] for doc in docs]

    def _check_ids(self, docs: list[Doc]) -> None:
        ids = [doc["id"] for doc in docs]
        if len(set(ids)) != len(ids):
            raise DuplicateWork("the same id appears twice in one deposit", field="id")
        query = {"id": {"$in": ids}}
        for existing in [*self.store.work.find(query), *self.store.results.find(query)]:
            doc = next(d for d in docs if d["id"] == existing["id"])
            if not _same_deposit(doc, existing):
                raise DuplicateWork(f"id {doc['id']} belongs to a different work", field="id")

    # -- withdraw ------------------------------------------------------------------------

    def withdraw(self, pipelines: Iterable[str] | None = None, *, query: Query | None = None,
                 limit: int = 1, lease: float | None = None, runner: str | None = None,
                 host: str | None = None) -> list[Doc]:  # fmt: skip
        """Claim up to ``limit`` queued works, highest priority first, then oldest.

        Args:
            pipelines: Buckets to take from; None means every pipeline with queued work.
            query: Further conditions (a checked Mongo-style filter).
            limit: How many works at most.
            lease: Seconds the claim holds without a heartbeat; None means the work's
                timeout (CHIME runners never heartbeat).
            runner: Runner id, recorded in the lease and later in the history.
            host: Runner host, likewise.

        Returns:
            The claimed works (status running, attempt incremented), possibly none.
        """
        if limit < 1:
            raise InvalidWork("limit must be at least 1", field="limit")
        if lease is not None and lease <= 0:
            raise InvalidWork("lease must be positive", field="lease")
        settings = self.store.settings()
        if pipelines is None:
            names = sorted({p for p, s, _ in self.store.work.tally() if s == "queued"})
        else:
            names = sorted(set(pipelines))
        names = [p for p in names if not settings.get(p, {}).get("paused")]
        if not names:
            return []
        claim = Claim(now=self.clock(), lease=lease, runner=runner, host=host)
        return self.store.claim(names, query or {}, claim, limit)

    # -- a running attempt ---------------------------------------------------------------

    def heartbeat(self, id: str, attempt: int, lease: float | None = None) -> Doc:
        """Extend the lease of attempt ``attempt`` of work ``id`` by ``lease`` seconds.

        Raises:
            TransitionConflict: the work is no longer running that attempt.
        """
        doc = self._running(id, attempt)
        now = self.clock()
        held = doc["lease"]
        length = lease if lease is not None else held["expires"] - held["heartbeat"]
        deadline = policy.lease_deadline(float(doc["start"]), float(doc["timeout"]))
        new = {**doc, "lease": {**held, "heartbeat": now, "expires": min(now + length, deadline)}}
        return self.store.work.swap(id, {"status": "running", "attempt": attempt}, new)

    def complete(self, id: str, attempt: int, status: str, *, results: dict[str, Any] | None = None,
                 products: list[str] | None = None, plots: list[str] | None = None,
                 error: dict[str, Any] | None = None, stop: float | None = None,
                 started: float | None = None, retry_delay: float | None = None,
                 reason: str | None = None, merge: bool = True,
                 nodes: list[dict[str, Any]] | None = None) -> Doc:  # fmt: skip
        """Record the outcome of attempt ``attempt``: ``success``, ``failure`` or ``retry``.

        A failure is queued again (after a backoff) while attempts remain, else the work
        moves to the results as ``failure``. ``retry`` (the function asked for it) queues
        again after ``retry_delay`` without using up an attempt. Repeating a completion
        that was already recorded returns the work unchanged. ``nodes`` (the node runs
        of a graph work) go into the attempt's history entry. With ``merge`` (the
        default) results are merged into and products and plots appended to what the
        work has; without it they replace it (CHIME clients send their whole state).

        Raises:
            TransitionConflict: attempt ``attempt`` is not the running one (stale).
            ResultsTooLarge: the results exceed the limit; nothing changes.
        """
        if status not in ("success", "failure", "retry"):
            raise InvalidWork("status must be success, failure or retry", field="status")
        check_results_size(results, self.results_limit)
        try:
            doc = self._running(id, attempt)
        except (TransitionConflict, NotFound):
            return self._recorded(id, attempt, status)
        now = self.clock()
        doc = {**doc, "stop": stop or now}
        if not merge:
            doc.update(results=results, products=products, plots=plots)
        else:
            if results is not None:
                doc["results"] = {**(doc.get("results") or {}), **results}
            for name, extra in (("products", products), ("plots", plots)):
                if extra:
                    doc[name] = [*(doc.get(name) or []), *extra]
        entry = self._entry(doc, status, error=error, started=started, stopped=doc["stop"],
                            reason=reason or ("retry-requested" if status == "retry" else None))
        if nodes is not None:
            entry.nodes = [NodeEntry.model_validate(n) for n in nodes]
        return self._after_attempt(doc, entry, retry_delay)

    def complete_many(self, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record several outcomes (each the keyword arguments of ``complete`` plus ``id``
        and ``attempt``) in one transaction; each is recorded or refused on its own.

        Returns:
            Per outcome, in order: ``{"id", "ok": True, "status"}`` or ``{"id", "ok":
            False, "status_code", "error", "message", ...}``.
        """

        def complete(outcome: dict[str, Any]) -> dict[str, Any]:
            outcome = dict(outcome)
            id, attempt = outcome.pop("id"), outcome.pop("attempt")
            done = self.complete(id, attempt, outcome.pop("status"), **outcome)
            return {"status": done["status"]}

        return self._one_by_one(outcomes, complete)

    def heartbeat_many(self, works: list[dict[str, Any]], lease: float | None = None
                       ) -> list[dict[str, Any]]:  # fmt: skip
        """Extend the leases of several running attempts (each ``{"id", "attempt"}``) in
        one transaction; each is extended or refused on its own.

        Returns:
            Per work, in order: ``{"id", "ok": True, "expires"}`` or the error, as in
            ``complete_many``.
        """

        def extend(work: dict[str, Any]) -> dict[str, Any]:
            extended = self.heartbeat(work["id"], work["attempt"], lease)
            return {"expires": extended["lease"]["expires"]}

        return self._one_by_one(works, extend)

    def _one_by_one(self, items: list[dict[str, Any]],
                    act: Callable[[dict[str, Any]], dict[str, Any]]
                    ) -> list[dict[str, Any]]:  # fmt: skip
        """``act`` on each item in one transaction, each succeeding or failing alone:
        ``{"id", "ok": True, **what act returned}`` or ``{"id", "ok": False,
        "status_code", "error", "message", ...}`` per item, in order."""
        replies: list[dict[str, Any]] = []
        with self.store.batch():
            for item in items:
                try:
                    replies.append({"id": item["id"], "ok": True, **act(item)})
                except WorkflowError as exc:
                    replies.append({"id": item["id"], "ok": False,
                                    "status_code": exc.status_code, **exc.to_dict()})  # fmt: skip
        return replies

    def exchange(self, outcomes: list[dict[str, Any]], pipelines: Iterable[str] | None = None,
                 **withdraw: Any) -> tuple[list[dict[str, Any]], list[Doc]]:  # fmt: skip
        """Record ``outcomes`` (as ``complete_many``), then claim more works (the keyword
        arguments of ``withdraw``), in one transaction where the backend can: a runner's
        turn of its loop in one step.

        Returns:
            The replies of ``complete_many`` and the claimed works.
        """
        with self.store.batch():
            replies = self.complete_many(outcomes) if outcomes else []
            return replies, self.withdraw(pipelines, **withdraw)

    def release(self, id: str, attempt: int, reason: str = "released") -> Doc:
        """Give a running work back to the queue without using up an attempt."""
        doc = self._running(id, attempt)
        entry = self._entry(doc, "released", reason=reason, stopped=self.clock())
        return self._after_attempt(doc, entry, 0.0)

    def expire(self, limit: int = 100) -> int:
        """Record every running work whose lease expired as lost; return how many.

        The server calls this periodically. Each lost attempt is queued again or, when
        no attempts remain, finished as failure.
        """
        now = self.clock()
        handled = 0
        for doc in self.store.expired(now, limit):
            timed_out = now >= float(doc["start"]) + float(doc["timeout"])
            reason = "timeout" if timed_out else "lease-expired"
            entry = self._entry(doc, "lost", reason=reason, stopped=now)
            try:
                self._after_attempt(doc, entry, None)
                handled += 1
            except (TransitionConflict, NotFound):
                continue  # the runner finished it meanwhile
        return handled

    def _after_attempt(self, doc: Doc, entry: AttemptEntry, delay: float | None) -> Doc:
        """Append ``entry`` and either queue the work again or finish it."""
        expect = {"status": "running", "attempt": doc["attempt"]}
        history = [*doc.get("history", []), entry.model_dump(mode="json")]
        doc = {**doc, "history": history, "lease": None}
        outcome = entry.outcome
        if outcome == "success":
            return self.store.finish(doc["id"], expect, {**doc, "status": "success"})
        if outcome in ("failure", "lost") and not policy.may_retry(history, doc["retries"]):
            return self.store.finish(doc["id"], expect, {**doc, "status": "failure"})
        if delay is None:
            delay = policy.backoff_delay(policy.counted_attempts(history), doc.get("backoff"))
        not_before = self.clock() + delay if delay > 0 else None
        queued = {**doc, "status": "queued", "not_before": not_before}
        return self.store.work.swap(doc["id"], expect, queued)

    def _entry(self, doc: Doc, outcome: str, *, error: dict[str, Any] | None = None,
               reason: str | None = None, started: float | None = None,
               stopped: float | None = None) -> AttemptEntry:  # fmt: skip
        lease = doc.get("lease") or {}
        return AttemptEntry(
            attempt=doc["attempt"], runner=lease.get("runner"), host=lease.get("host"),
            claimed=lease.get("claimed"), started=started or doc.get("start"),
            stopped=stopped, outcome=outcome,  # type: ignore[arg-type]
            reason=reason, error=ErrorInfo.model_validate(error) if error else None,
        )  # fmt: skip

    def _running(self, id: str, attempt: int) -> Doc:
        doc = self.store.work.get(id)
        if doc is None:
            raise NotFound(f"no work {id} in the bucket", field="id", id=id)
        if doc["status"] != "running" or doc["attempt"] != attempt:
            raise TransitionConflict(
                f"work {id} is {doc['status']} at attempt {doc['attempt']}; "
                f"attempt {attempt} is stale",
                field="attempt", id=id, status=doc["status"], attempt=doc["attempt"],
            )  # fmt: skip
        return doc

    def _recorded(self, id: str, attempt: int, status: str) -> Doc:
        """The work, if its history already holds this completion of this attempt.

        Raises:
            NotFound: no such work anywhere.
            TransitionConflict: the work moved on without this completion (stale).
        """
        doc = self.get(id)
        ended = [e for e in doc.get("history", []) if e.get("attempt") == attempt]
        if any(entry.get("outcome") == status for entry in ended):
            return doc
        if ended:
            raise TransitionConflict(
                f"attempt {attempt} of work {id} already ended as {ended[-1].get('outcome')}; "
                f"it cannot also end as {status} (the work is {doc['status']})",
                field="status", id=id, status=doc["status"], attempt=doc["attempt"],
            )  # fmt: skip
        raise TransitionConflict(
            f"work {id} is {doc['status']} at attempt {doc['attempt']}; "
            f"attempt {attempt} is stale",
            field="attempt", id=id, status=doc["status"], attempt=doc["attempt"],
        )  # fmt: skip

    # -- operators -----------------------------------------------------------------------

    def cancel(self, id: str, by: str | None = None) -> Doc:
        """Cancel a queued or running work: it moves to the results as ``cancelled``."""
        doc = self.get_active(id)
        expect = {"status": doc["status"], "attempt": doc["attempt"]}
        history = list(doc.get("history", []))
        if doc["status"] == "running":
            entry = self._entry(doc, "cancelled", reason="cancelled", stopped=self.clock())
            history.append(entry.model_dump(mode="json"))
        history.append(_action("cancel", self.clock(), by))
        final = {**doc, "status": "cancelled", "lease": None, "history": history}
        return self.store.finish(id, expect, final)

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None,
               by: str | None = None) -> Doc:  # fmt: skip
        """Change priority and/or retries of a queued work."""
        doc = self.get_active(id)
        if doc["status"] != "queued":
            raise TransitionConflict(f"work {id} is {doc['status']}; only queued work changes",
                                     field="status", id=id, status=doc["status"])  # fmt: skip
        changes = {k: v for k, v in (("priority", priority), ("retries", retries)) if v is not None}
        if not changes:
            raise InvalidWork("give priority and/or retries", field="priority")
        new = parse_work({**doc, **changes}, "work").payload()
        new["history"] = [*doc.get("history", []), _action("change", self.clock(), by, changes)]
        return self.store.work.swap(id, {"status": "queued", "attempt": doc["attempt"]}, new)

    def retry(self, id: str, parameters: dict[str, Any] | None = None,
              by: str | None = None) -> Doc:  # fmt: skip
        """Queue a finished work again as a new work, with other ``parameters`` if given.

        The two are linked: the new work's history starts with a ``retry-of`` action,
        the original's gains ``retried-as``; both name ``by``.

        Raises:
            NotFound: no finished work ``id``.
            InvalidWork: the new parameters are not a valid work's.
        """
        original = self.store.results.get(id)
        if original is None:
            raise NotFound(f"no finished work {id}", field="id", id=id)
        raw = {name: original[name] for name in _REPEATED if original.get(name) is not None}
        if parameters is not None:
            raw["parameters"] = parameters
        now = self.clock()
        with self.store.batch():  # one transaction: no runner sees the new work unlinked
            (new_id,) = self.deposit([raw])
            new = self.store.work.get(new_id)
            assert new is not None
            new = {**new, "history": [_action("retry-of", now, by, {"of": id})]}
            self.store.work.swap(new_id, {"status": "queued", "attempt": 0}, new)
            history = [*original.get("history", []), _action("retried-as", now, by, {"as": new_id})]
            self.store.results.swap(id, {"status": original["status"]},
                                    {**original, "history": history})  # fmt: skip
        return new

    def delete(self, ids: list[str]) -> int:
        """Delete works from the bucket; return how many existed."""
        return self.store.work.delete(ids)

    # -- reading -------------------------------------------------------------------------

    def get_active(self, id: str) -> Doc:
        """The work ``id`` from the bucket.

        Raises:
            NotFound: it is not in the bucket (it may have finished).
        """
        doc = self.store.work.get(id)
        if doc is None:
            raise NotFound(f"no work {id} in the bucket", field="id", id=id)
        return doc

    def get(self, id: str) -> Doc:
        """The work ``id`` from the bucket or, once finished, from the results."""
        doc = self.store.work.get(id) or self.store.results.get(id)
        if doc is None:
            raise NotFound(f"no work {id}", field="id", id=id)
        return doc

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per pipeline and status, over the bucket and the results."""
        out: dict[str, dict[str, int]] = {}
        for collection in (self.store.work, self.store.results):
            for pipeline, status, n in collection.tally():
                out.setdefault(pipeline, {})[status] = n
        return out

    # -- pipelines -----------------------------------------------------------------------

    def settings(self, pipeline: str) -> PipelineSettings:
        """The settings of ``pipeline`` (defaults apply when none were set)."""
        return parse_settings(self.store.settings().get(pipeline))

    def configure(self, pipeline: str, changes: dict[str, Any], by: str | None = None
                  ) -> PipelineSettings:  # fmt: skip
        """Merge ``changes`` (``defaults`` and/or ``paused``) into the pipeline's settings;
        the change goes into the pipeline's history (its last ``HISTORY``) with ``by``."""
        parse_work({"pipeline": pipeline}, "pipeline")
        if not isinstance(changes, dict) or not changes:
            raise InvalidWork("give defaults and/or paused", field="changes")
        for name in changes:
            if name not in CHANGEABLE:
                raise InvalidWork(f"{name!r} cannot be changed; change "
                                  f"{' or '.join(CHANGEABLE)}", field=name)  # fmt: skip
        current = self.settings(pipeline).model_dump()
        if "defaults" in changes and isinstance(changes["defaults"], dict):
            changes = {**changes, "defaults": {**current["defaults"], **changes["defaults"]}}
        action = ("pause" if changes["paused"] else "resume") if list(changes) == ["paused"] \
            else "configure"
        entry = _action(action, self.clock(), by, changes)
        history = [*current["history"], entry][-HISTORY:]
        settings = parse_settings({**current, **changes, "history": history}, where="")
        self.store.put_settings(pipeline, settings.model_dump())
        return settings


def _same_deposit(new: Doc, old: Doc) -> bool:
    return all(new.get(name) == old.get(name) for name in _IDENTITY)


def _action(action: str, at: float, by: str | None, changes: dict[str, Any] | None = None
            ) -> dict[str, Any]:  # fmt: skip
    return ActionEntry(action=action, at=at, by=by, changes=changes).model_dump(mode="json")


def plain_query(
    *,
    site: str | None = None,
    user: str | None = None,
    priority: int | None = None,
    tags: list[str] | None = None,
    event: list[int] | None = None,
    parent: list[str] | None = None,
) -> Query:
    """The store query for plain withdraw filters: equality on site, user and priority;
    any of the tags, events or parent pipelines."""
    query: Query = {}
    for name, value in (("site", site), ("user", user), ("priority", priority)):
        if value is not None:
            query[name] = value
    for path, values in (("tags", tags), ("event", event), ("config.parent", parent)):
        if values:
            query[path] = {"$in": list(values)}
    return query
