"""The bucket verbs, written once over any ``Store``.

deposit → withdraw (claim) → heartbeat* → complete; or the lease expires and the
server records the attempt as lost. A failed or lost attempt is queued again, after a
backoff, while attempts remain; otherwise the work moves to the results with its full
history, in one atomic step. Every change is a compare-and-set on status and attempt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from workflow import jsonsafe, policy
from workflow.buckets.batches import BatchVerbs
from workflow.buckets.logs import LogVerbs
from workflow.buckets.operators import OperatorVerbs
from workflow.buckets.reading import ReadingVerbs
from workflow.buckets.runners import RunnerVerbs, Sightings
from workflow.buckets.why import WhyVerbs
from workflow.errors import (
    DuplicateWork,
    Forbidden,
    InvalidWork,
    LimitExceeded,
    NotFound,
    TransitionConflict,
)
from workflow.history import AttemptEntry, ErrorInfo
from workflow.notices import check_targets, work_notes
from workflow.store.base import UNREADABLE, Claim, Doc, Query, Store
from workflow.wire import LOG_LIMIT, Outcome, Withdraw, deposit_payloads, with_defaults
from workflow.work import (
    RESULTS_LIMIT,
    TERMINAL,
    TRANSITIONS,
    Work,
    check_function,
    check_results_size,
    new_id,
    parse_work,
)

#: Fields a deposit does not set: the server's, which change as the work goes on.
_CHANGED_LATER = frozenset({"id", "status", "attempt", "start", "stop", "lease", "not_before",
                            "history", "progress"})  # fmt: skip
#: Fields the attempts of a work write to.
_OUTPUTS = frozenset({"results", "products", "plots"})
MAX_BATCH = 10_000


class Buckets(BatchVerbs, OperatorVerbs, RunnerVerbs, WhyVerbs, LogVerbs, ReadingVerbs):
    """Queued and running work over a ``Store``.

    Args:
        store: The backend.
        results_limit: Largest accepted ``results``, in bytes of JSON.
        clock: Time source (seconds since the epoch); tests pass a fake one.
        reap_interval: Seconds between the server's writes of what it saw of runners
            (``workflow.buckets.runners``).
        log_limit: Bytes of each attempt's log the store keeps (``workflow.buckets.logs``).
        targets: The names of the notification targets the server has; a work or a rule
            naming another is refused (None: any name goes).
        slack_target: The target that CHIME's ``notify.slack`` goes to.

    Attributes:
        changed: Called whenever a work may have become claimable (a deposit, a work
            queued again, a pipeline resumed), with the time it becomes claimable if
            that is later (a backoff); the service wakes held withdraws with it.
        finished: Called with a work's id once it has finished (moved to the results);
            the service answers reads that wait for it.
        noted: Called once a state change has put messages in the outbox.
    """

    def __init__(self, store: Store, *, results_limit: int = RESULTS_LIMIT,
                 clock: Callable[[], float] = time.time, reap_interval: float = 5.0,
                 log_limit: int = LOG_LIMIT, targets: frozenset[str] | None = None,
                 slack_target: str = "slack") -> None:  # fmt: skip
        self.store = store
        self.targets, self.slack_target = targets, slack_target
        self.log_limit = log_limit
        self.results_limit = results_limit
        self.clock = clock
        self.reap_interval = reap_interval
        self.sightings = Sightings()
        self.changed: Callable[[float | None], None] = _unheard
        self.finished: Callable[[str], None] = _unheard
        self.noted: Callable[[None], None] = _unheard
        self._local = threading.local()  # the batch this thread is in (see ``batch``)

    # -- deposit -------------------------------------------------------------------------

    def deposit(self, works: Sequence[Work | Doc], user: str | None = None) -> list[str]:
        """Queue new works; return their ids in input order.

        A work may bring its own ``id``: depositing the same work again (the same id and
        the same content, see ``_same_deposit``) is a no-op that returns the id, so a
        client may retry a deposit whose reply was lost. A work that names no ``user``
        is recorded under ``user`` (the depositing token's name), else ``unknown``.

        Raises:
            InvalidWork: a work is invalid; nothing is deposited.
            DuplicateWork: an id is taken by a different work; nothing is deposited.
            ResultsTooLarge: a work carries oversized results; nothing is deposited.
        """
        if not isinstance(works, list | tuple) or not works:
            raise InvalidWork("deposit a non-empty list of works", field="works")
        if len(works) > MAX_BATCH:
            raise LimitExceeded(f"at most {MAX_BATCH} works per deposit, not {len(works)}",
                                field="works", limit=MAX_BATCH)  # fmt: skip
        settings = self.store.settings()
        docs = []
        for index, raw in enumerate(deposit_payloads(works)):
            where = f"works[{index}]"
            if not isinstance(raw, dict):
                raise InvalidWork(f"{where}: a work is a JSON object", field=where)
            if "user" not in raw:
                raw = {**raw, "user": user or "unknown"}
            defaults = settings.get(str(raw.get("pipeline")), {}).get("defaults", {})
            work = parse_work(with_defaults(raw, defaults), where)
            check_function(work, where)
            check_targets([(f"{where}.notify.to.{n}.target", send.target)
                           for n, send in enumerate(work.notify.to or [])], self.targets)
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
        for work in works:
            if isinstance(work, Work):
                work.status = "queued"
        self.tell(self.changed, None)
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

    def withdraw(self, want: Withdraw, *, by: str | None = None) -> list[Doc]:
        """Claim up to ``want.limit`` queued works, highest priority first, then oldest
        (see ``claim``); ``by`` is the claiming token's name."""
        if want.runner is not None:
            self.sightings.saw(want.runner, self.clock(), want)
        return self.claim(want.pipelines, want.query(), limit=want.limit, lease=want.lease,
                          runner=want.runner, host=want.host, by=by)  # fmt: skip

    def claim(self, pipelines: Iterable[str] | None, query: Query, *, limit: int = 1,
              lease: float | None = None, runner: str | None = None,
              host: str | None = None, by: str | None = None) -> list[Doc]:  # fmt: skip
        """Claim up to ``limit`` queued works, highest priority first, then oldest.

        Args:
            pipelines: Buckets to take from; None means every pipeline with queued work.
            query: Further conditions (a checked Mongo-style filter).
            limit: How many works at most.
            lease: Seconds the claim holds without a heartbeat; None means the work's
                timeout (CHIME runners never heartbeat).
            runner: Runner id, recorded in the lease and later in the history.
            host: Runner host, likewise.
            by: The name of the claiming access token, likewise: a runner token then
                reports only on works it claimed (see ``complete``).

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
        claim = Claim(now=self.clock(), lease=lease, runner=runner, host=host, by=by)
        # The claim and the check that each claimed work can be written into the reply
        # are one transaction: a claim is never kept for a work nobody can be told of.
        with self.batch():
            taken = self.store.claim(names, query, claim, limit)
            return [doc for doc in taken if not self._set_aside(doc)]

    def _set_aside(self, doc: Doc) -> bool:
        """Finish a just-claimed work as failure if its stored document cannot be read or
        written as JSON (stored before bodies were checked, or written by hand),
        so that it never blocks the works behind it; True if it was set aside.

        The fields that cannot be written are replaced by a note saying why."""
        problem = doc.get(UNREADABLE) or jsonsafe.unwritable(doc)
        if problem is None:
            return False
        note = {"unwritable": problem}
        kept = {k: v if jsonsafe.unwritable(v) is None else note for k, v in doc.items()}
        stored = kept.get("history")
        history: list[Any] = stored if isinstance(stored, list) else []
        error = {"type": "UnwritableWork", "message": "this work's stored document cannot be "
                 f"written as JSON ({problem}); it was taken out of the queue"}  # fmt: skip
        entry = self._entry(kept, "failure", error=error, reason="unwritable",
                            stopped=self.clock())  # fmt: skip
        final = {**kept, "status": "failure", "lease": None,
                 "history": [*history, entry.model_dump(mode="json")]}  # fmt: skip
        self.move(doc, final)
        return True

    # -- a running attempt ---------------------------------------------------------------

    def heartbeat(self, id: str, attempt: int, lease: float | None = None,
                  holder: str | None = None) -> Doc:  # fmt: skip
        """Extend the lease of attempt ``attempt`` of work ``id`` by ``lease`` seconds.

        Raises:
            TransitionConflict: the work is no longer running that attempt.
            Forbidden: ``holder`` is not the token that claimed it (see ``_running``).
        """
        doc = self._running(id, attempt, holder)
        now = self.clock()
        held = doc["lease"]
        if held.get("runner") is not None:
            self.sightings.saw(held["runner"], now)
        length = lease if lease is not None else held["expires"] - held["heartbeat"]
        deadline = policy.lease_deadline(float(doc["start"]), float(doc["timeout"]))
        new = {**doc, "lease": {**held, "heartbeat": now, "expires": min(now + length, deadline)}}
        return self.move(doc, new)

    def complete(self, outcome: Outcome, *, merge: bool = True, holder: str | None = None,
                 by: str | None = None) -> Doc:  # fmt: skip
        """Record ``outcome``: ``success``, ``failure`` or ``retry`` of a running attempt.

        A failure is queued again (after a backoff) while attempts remain, else the work
        moves to the results as ``failure``. ``retry`` (the function asked for it) queues
        again after ``retry_delay`` without using up an attempt. Repeating a completion
        that was already recorded returns the work unchanged. The outcome's ``nodes``
        (the node runs of a graph work) go into the attempt's history entry. With
        ``merge`` (the default) results are merged into and products and plots appended
        to what the work has; without it they replace it (CHIME clients send their
        whole state). ``by`` names who reported it in the history entry; ``holder`` is
        the runner token that must have claimed the attempt (None: anyone may report).

        Raises:
            InvalidWork: the outcome names no work or no attempt.
            TransitionConflict: attempt ``attempt`` is not the running one (stale).
            ResultsTooLarge: the results exceed the limit; nothing changes.
            Forbidden: ``holder`` did not claim this attempt.
        """
        id, attempt, status = outcome.id, outcome.attempt, outcome.status
        if not id or attempt < 1:
            field = "attempt" if id else "id"
            raise InvalidWork(f"{field}: an outcome names its work and its attempt (from 1)",
                              field=field)  # fmt: skip
        check_results_size(outcome.results, self.results_limit)
        try:
            doc = self._running(id, attempt, holder)
        except (TransitionConflict, NotFound):
            return self.recorded(id, attempt, status)
        # The log first: a crash before the work moves on loses nothing of it, and an
        # outcome sent again adds nothing to it.
        log = self.keep_log(id, attempt, outcome.log) if outcome.log is not None else None
        now = self.clock()
        doc = {**doc, "stop": outcome.stop or now}
        if not merge:
            doc.update(results=outcome.results, products=outcome.products, plots=outcome.plots)
        else:
            if outcome.results is not None:
                doc["results"] = {**(doc.get("results") or {}), **outcome.results}
            for name, extra in (("products", outcome.products), ("plots", outcome.plots)):
                if extra:
                    doc[name] = [*(doc.get(name) or []), *extra]
        reason = outcome.reason or ("retry-requested" if status == "retry" else None)
        entry = self._entry(doc, status, error=outcome.error, started=outcome.started,
                            stopped=doc["stop"], reason=reason, by=by)  # fmt: skip
        entry.nodes, entry.log, entry.provenance = outcome.nodes, log, outcome.provenance
        return self._after_attempt(doc, entry, outcome.retry_delay)

    def release(self, id: str, attempt: int, reason: str = "released",
                holder: str | None = None, by: str | None = None) -> Doc:  # fmt: skip
        """Give a running work back to the queue without using up an attempt."""
        doc = self._running(id, attempt, holder)
        entry = self._entry(doc, "released", reason=reason, stopped=self.clock(), by=by)
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
        """Append ``entry`` and either queue the work again or finish it; count the
        attempt for the runner that held it."""
        moved = self._next_state(doc, entry, delay)
        if entry.runner is not None:
            self.sightings.ended(entry.runner, self.clock(), entry.outcome)
        return moved

    def _next_state(self, doc: Doc, entry: AttemptEntry, delay: float | None) -> Doc:
        expect = {"status": "running", "attempt": doc["attempt"]}
        history = [*doc.get("history", []), entry.model_dump(mode="json")]
        doc = {**doc, "history": history, "lease": None, "progress": None}
        outcome = entry.outcome
        if outcome == "success":
            return self.move(expect, {**doc, "status": "success"})
        if outcome in ("failure", "lost") and not policy.may_retry(history, doc["retries"]):
            return self.move(expect, {**doc, "status": "failure"})
        if delay is None:
            delay = policy.backoff_delay(policy.counted_attempts(history), doc.get("backoff"))
        not_before = self.clock() + delay if delay > 0 else None
        return self.move(expect, {**doc, "status": "queued", "not_before": not_before})

    def move(self, old: Doc, new: Doc) -> Doc:
        """Write ``new`` over the work ``old`` was, by compare-and-set on ``old``'s status
        and attempt: every state change of a bucket work goes through here.

        A finished status moves the work to the results in the same step. The messages
        the change causes (``workflow.notices.work_notes``) go into the outbox with it.

        Raises:
            TransitionConflict: the status table (``TRANSITIONS``) forbids the change, or
                the stored work is no longer at ``old``'s status and attempt.
            NotFound: the work is not in the bucket.
        """
        before, after = old["status"], new["status"]
        if after != before and after not in TRANSITIONS[before]:
            raise TransitionConflict(f"work {new['id']} cannot go from {before} to {after}",
                                     field="status", id=new["id"], status=before)  # fmt: skip
        expect = {"status": before, "attempt": old["attempt"]}
        notes = work_notes(before, new, self.clock, self.slack_target)
        if after in TERMINAL:
            done = self.store.finish(new["id"], expect, new, notes)
            self.tell(self.finished, new["id"])
        else:
            done = self.store.work.swap(new["id"], expect, new, notes)
        if notes:
            self.tell(self.noted, None)
        if after == "queued":
            self.tell(self.changed, new.get("not_before"))
        return done

    def _entry(self, doc: Doc, outcome: str, *, error: ErrorInfo | Doc | None = None,
               reason: str | None = None, started: float | None = None,
               stopped: float | None = None, by: str | None = None) -> AttemptEntry:  # fmt: skip
        lease = doc.get("lease") or {}
        return AttemptEntry(
            attempt=doc["attempt"], runner=lease.get("runner"), host=lease.get("host"),
            claimed=lease.get("claimed"), started=started or doc.get("start"),
            stopped=stopped, outcome=outcome,  # type: ignore[arg-type]
            reason=reason, error=ErrorInfo.model_validate(error) if error else None, by=by,
        )  # fmt: skip

    def _running(self, id: str, attempt: int, holder: str | None = None) -> Doc:
        """The work, running attempt ``attempt``, and claimed by ``holder`` if given.

        Raises:
            NotFound, TransitionConflict: no such work, or not at that attempt.
            Forbidden: another access token claimed it: a runner token reports only on
                the works it holds.
        """
        doc = self.store.work.get(id)
        if doc is None:
            raise NotFound(f"no work {id} in the bucket", field="id", id=id)
        if doc["status"] != "running" or doc["attempt"] != attempt:
            raise TransitionConflict(
                f"work {id} is {doc['status']} at attempt {doc['attempt']}; "
                f"attempt {attempt} is stale",
                field="attempt", id=id, status=doc["status"], attempt=doc["attempt"],
            )  # fmt: skip
        return self.held(doc, holder)

    @staticmethod
    def held(doc: Doc, holder: str | None) -> Doc:
        """``doc``, if ``holder`` (a runner token's name; None: anyone) claimed it.

        Raises:
            Forbidden: another access token claimed it: a runner token reports only on
                the works it holds.
        """
        claimer = (doc.get("lease") or {}).get("by")
        if holder is not None and claimer is not None and claimer != holder:
            raise Forbidden(f"work {doc['id']} attempt {doc['attempt']} was claimed by the "
                            f"token {claimer}; a runner token reports only on the works it "
                            "holds", field="token", id=doc["id"])  # fmt: skip
        return doc


def _unheard(what: Any) -> None:
    """``Buckets.changed`` and ``Buckets.finished`` when nobody listens."""


def _same_deposit(new: Doc, old: Doc) -> bool:
    """Whether ``new`` repeats the deposit that made ``old``: every field the depositor
    gave is the same, but for what happened to ``old`` since (its state, its attempts'
    outputs once it ran, and whatever an operator changed, as its history says)."""
    history = old.get("history") or []
    later = set(_CHANGED_LATER)
    if history or old.get("attempt"):
        later |= _OUTPUTS
    for entry in history:
        if isinstance(entry, dict) and entry.get("kind") == "action":
            later |= set(entry.get("changes") or ())
    return all(new.get(name) == old.get(name) for name in new.keys() - later)
