"""The storage contract: a few primitives per backend, free of SQL and of policy.

The bucket and results verbs (``workflow.buckets``, ``workflow.results``) are written
once over these primitives. Documents are plain JSON-ready dicts shaped like
``Work.payload()``; queries are Mongo-style filters already checked by
``workflow.filters.check_filter``.

Every state change is a compare-and-set: ``swap`` and ``finish`` name the fields they
expect (status, and the attempt number as a fencing token) and raise
``TransitionConflict`` when the stored work no longer matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from workflow.policy import lease_deadline

Doc = dict[str, Any]
#: The key under which a store hands over a work it could not read, saying why.
UNREADABLE = "unreadable"
Query = dict[str, Any]
#: Sort order as (field, direction) pairs, direction 1 ascending and -1 descending.
Sort = list[tuple[str, int]]

@dataclass(frozen=True)
class Claim:
    """What a claim writes on each work it takes.

    Attributes:
        now: The claim time; becomes ``start`` and ``lease.claimed``.
        lease: Seconds until the lease expires unless heartbeats extend it; ``None``
            means the work's own ``timeout`` (what CHIME runners, which never
            heartbeat, need). The lease never outlives ``start + timeout``.
        runner: Runner id recorded in the lease.
        host: Runner host recorded in the lease.
        by: The name of the access token that claims, recorded in the lease: only a
            runner with that token may report on the work (``Buckets.complete``).
    """

    now: float
    lease: float | None = None
    runner: str | None = None
    host: str | None = None
    by: str | None = None


class Collection(Protocol):
    """A set of works keyed by ``id``: the bucket or the results."""

    def insert(self, docs: list[Doc]) -> list[Doc | None]:
        """Insert new works in one transaction.

        Returns, per input document, ``None`` when it was inserted, or the stored
        document when one with that id exists already (nothing is written for it).
        """
        ...

    def get(self, id: str) -> Doc | None:
        """The work with that id, or None."""
        ...

    def find(self, query: Query, *, sort: Sort | None = None, skip: int = 0,
             limit: int | None = None, text: str | None = None) -> list[Doc]:  # fmt: skip
        """Works matching ``query`` (and containing ``text`` in parameters, results,
        tags or error messages, when given), sorted, paginated. ``limit`` None is all."""
        ...

    def count(self, query: Query, *, text: str | None = None) -> int:
        """How many works match."""
        ...

    def swap(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
             ) -> Doc:  # fmt: skip
        """Replace the work ``id`` by ``doc`` if its fields equal ``expect``, and put
        ``notes`` in the outbox with it (see ``Outbox``).

        Raises:
            NotFound: no work with that id.
            TransitionConflict: the stored work does not match ``expect``.
        """
        ...

    def delete(self, ids: list[str]) -> int:
        """Delete these works; return how many existed."""
        ...

    def append(self, id: str, entries: list[Doc]) -> bool:
        """Append ``entries`` to the history of work ``id`` in one atomic step that
        changes nothing else (two appends never undo each other); False when there is
        no such work."""
        ...

    def tally(self) -> list[tuple[str, str, int]]:
        """(pipeline, status, count) for every pipeline and status present."""
        ...


class LogBook(Protocol):
    """Each attempt's log, as much of its end as the server keeps, keyed by work id and
    attempt: ``{"work", "attempt", "size", "start", "text", "skipped", "updated"}``
    (``size`` bytes written so far, the last of them from byte ``start`` on in ``text``,
    ``skipped`` bytes of it never received)."""

    def get(self, work: str, attempt: int) -> Doc | None:
        """The log of attempt ``attempt`` of ``work``, or None."""
        ...

    def attempts(self, work: str) -> list[Doc]:
        """The logs of every attempt of ``work``, without their text, by attempt."""
        ...

    def put(self, doc: Doc, expect: int | None) -> bool:
        """Write ``doc`` if the stored log's size is ``expect`` (None: no log is stored
        yet); False, writing nothing, when it is not (compare-and-set)."""
        ...

    def forget(self, works: list[str]) -> int:
        """Delete the logs of ``works``; return how many attempts' logs there were."""
        ...


class Documents(Protocol):
    """Documents of other kinds than works (pipeline runs, configurations, schedules),
    each ``{"id", "version", "status", "name", ...}``, keyed by kind and id; every put a
    compare-and-set on ``version``."""

    def get(self, kind: str, id: str) -> Doc | None:
        """The document ``id`` of ``kind``, or None."""
        ...

    def find(self, kind: str, *, status: list[str] | None = None, name: str | None = None,
             limit: int | None = None) -> list[Doc]:  # fmt: skip
        """Documents of ``kind`` with one of ``status`` and that ``name`` (None: any),
        newest first (by ``creation``)."""
        ...

    def put(self, kind: str, doc: Doc, expect: int | None, notes: Sequence[Doc] = ()
            ) -> bool:  # fmt: skip
        """Write ``doc`` if the stored one's ``version`` is ``expect`` (None: none is
        stored yet), and put ``notes`` in the outbox with it (see ``Outbox``); False,
        writing nothing, when it is not."""
        ...

    def delete(self, kind: str, ids: list[str]) -> int:
        """Delete these documents of ``kind``; return how many there were."""
        ...


class Outbox(Protocol):
    """Messages to deliver (``workflow.notify``), oldest first per target.

    Each is ``{"key", "target", "state", "version", "created", "due", "work", ...}``:
    ``key`` is unique (a note whose key is stored already is not written again),
    ``state`` one of ``pending`` and ``sending`` (not yet delivered), ``recording``
    (delivered, or given up on, and to be written into the work's history) and
    ``done``. A note is written with the state change that causes it, in the same
    transaction: the ``notes`` of ``Store.finish``, ``Collection.swap`` and
    ``Documents.put``. Every later change is a compare-and-set on ``version``.
    """

    def add(self, notes: Sequence[Doc]) -> int:
        """Write ``notes`` (outside any state change); return how many were new."""
        ...

    def get(self, key: str) -> Doc | None:
        """The message ``key``, or None."""
        ...

    def heads(self, target: str | None = None) -> list[Doc]:
        """Per target (or of ``target`` alone), its oldest message not yet delivered
        (``pending`` or ``sending``), whatever its ``due``."""
        ...

    def recording(self, now: float, limit: int = 100) -> list[Doc]:
        """Messages in state ``recording`` whose ``due`` has come, oldest first."""
        ...

    def put(self, doc: Doc, expect: int) -> bool:
        """Write ``doc`` if the stored message's ``version`` is ``expect``; False,
        writing nothing, when it is not."""
        ...

    def find(self, *, work: str | None = None, states: list[str] | None = None,
             target: str | None = None, limit: int = 100) -> list[Doc]:  # fmt: skip
        """Messages of ``work``, in ``states``, to ``target`` (None: any), newest first."""
        ...

    def prune(self, before: float) -> int:
        """Forget the ``done`` messages created before ``before``; return how many."""
        ...


class Following(Protocol):
    """A store passing on other servers' changes as they happen (``Store.follow``)."""

    def stop(self) -> None:
        """Stop following (the server stops)."""
        ...


class Store(Protocol):
    """A backend: the bucket, the results, pipeline settings, and two atomic moves."""

    url: str
    #: Reads may run at once in several threads, each on its own snapshot, and gain by
    #: it (a search's page and its count run side by side).
    concurrent_reads: bool
    #: Other servers may write to the store: each hears of their changes through
    #: ``follow``, or else looks for work for its held withdraws every 100 ms
    #: (``workflow.service.waiting``).
    shared: bool

    @property
    def work(self) -> Collection:
        """The bucket: queued and running works."""
        ...

    @property
    def results(self) -> Collection:
        """Finished works."""
        ...

    @property
    def logs(self) -> LogBook:
        """The attempts' logs, of queued, running and finished works alike."""
        ...

    @property
    def documents(self) -> Documents:
        """Pipeline runs, configurations and schedules."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The messages to deliver."""
        ...

    def claim(self, pipelines: list[str], query: Query, claim: Claim, limit: int = 1
              ) -> list[Doc]:  # fmt: skip
        """Atomically take up to ``limit`` queued works of ``pipelines`` matching ``query``.

        Only works with ``status == "queued"`` and ``not_before`` unset or due are
        taken, highest ``priority`` first, then oldest ``creation``, then ``id``. Each
        taken work gets ``status="running"``, ``start=claim.now``, ``attempt + 1``, a
        ``lease`` and ``not_before=None``; the updated documents are returned. No two
        concurrent claims ever return the same work.
        """
        ...

    def finish(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
               ) -> Doc:  # fmt: skip
        """Move a work from the bucket to the results atomically (compare-and-set), and
        put ``notes`` in the outbox with it (see ``Outbox``).

        Raises:
            NotFound: no work with that id in the bucket.
            TransitionConflict: the stored work does not match ``expect``.
        """
        ...

    def batch(self) -> AbstractContextManager[None]:
        """A context in which writes share one transaction where the backend can; each
        write still succeeds or fails on its own."""
        ...

    def promptly(self) -> AbstractContextManager[bool]:
        """A context for running writes where waiting would hurt (an event loop).

        Yields True when the backend can promise that inside, a write that would have
        to wait for another writer raises ``WouldWait`` before it changes anything;
        False when it cannot (the caller should then run the writes elsewhere).
        """
        ...

    def finished_per_minute(self, since: float) -> list[tuple[int, str, str, int]]:
        """Works finished per minute since ``since``: (minute start in unix seconds,
        pipeline, status, count), oldest first. Kept as works finish; deleting results
        does not change it."""
        ...

    def tidy(self) -> None:
        """Background upkeep, called by the server every reap interval (for SQLite:
        indexing the words of finished works)."""
        ...

    def expired(self, now: float, limit: int = 100) -> list[Doc]:
        """Running works whose lease expired before ``now``, oldest expiry first."""
        ...

    def settings(self) -> dict[str, dict[str, Any]]:
        """Per-pipeline settings (defaults, paused) keyed by pipeline name."""
        ...

    def put_settings(self, pipeline: str, settings: dict[str, Any]) -> None:
        """Store the settings of one pipeline, replacing what was there."""
        ...

    def runners(self) -> list[Doc]:
        """Every runner on record (``workflow.buckets.runners``), by id."""
        ...

    def put_runner(self, doc: Doc) -> None:
        """Record runner ``doc["id"]`` as ``doc`` says (it announced itself), replacing
        what was there."""
        ...

    def touch_runner(self, id: str, seen: float, *, done: int = 0, failed: int = 0,
                     stopped: float | None = None, new: Doc | None = None) -> None:  # fmt: skip
        """Runner ``id`` was seen at ``seen`` (its ``last_seen`` becomes the later of the
        two), finished ``done`` more attempts and failed ``failed`` more; with
        ``stopped``, it said goodbye then. A runner not on record is recorded as
        ``new`` with these figures, or, without ``new``, left unrecorded. Atomic: the
        figures of several servers add up."""
        ...

    def forget_runners(self, before: float) -> int:
        """Forget the runners last seen before ``before``; return how many."""
        ...

    def follow(self, on_claimable: Callable[[float | None], None],
               on_finished: Callable[[str], None], on_lost: Callable[[], None]
               ) -> Following | None:  # fmt: skip
        """Pass on the changes other servers make, as they happen (from a thread).

        Args:
            on_claimable: Told that a work may be claimable, now (None) or at a unix time.
            on_finished: Told the id of a work that has finished.
            on_lost: Told, once, that changes go unheard from now on.

        Returns:
            What to stop when the server stops; None where the store cannot follow
            (no other servers, or a database without change streams).

        Raises:
            StoreUnavailable: the database cannot be reached to start following.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def document(documents: Documents, kind: str, id: str, what: str) -> Doc:
    """The document ``id`` of ``kind``.

    Raises:
        NotFound: there is none (the message names ``what`` it is).
    """
    from workflow.errors import NotFound

    doc = documents.get(kind, id)
    if doc is None:
        raise NotFound(f"no {what} {id}", field="id", id=id)
    return doc


def claimed(doc: Doc, claim: Claim) -> Doc:
    """The document ``doc`` becomes when ``claim`` takes it (shared by every backend)."""
    timeout = _number(doc.get("timeout"), 3600.0) or 3600.0
    deadline = lease_deadline(claim.now, timeout)
    lease = claim.now + (timeout if claim.lease is None else claim.lease)
    return {
        **doc,
        "status": "running",
        "start": claim.now,
        "stop": None,
        "attempt": int(_number(doc.get("attempt"), 0)) + 1,
        "not_before": None,
        "lease": {
            "runner": claim.runner,
            "host": claim.host,
            "by": claim.by,
            "claimed": claim.now,
            "heartbeat": claim.now,
            # A lease never outlives the work's own timeout (and a little slack).
            "expires": min(lease, deadline),
        },
    }


def claim_order(doc: Doc) -> tuple[float, float, str]:
    """Sort key of the withdraw order: highest priority, then oldest creation, then id.

    Whatever a stored document holds, it sorts: a value that is not a number (a
    ``creation`` stored as null before non-finite numbers were refused) counts as 0.
    """
    return (-_number(doc.get("priority"), 0), _number(doc.get("creation"), 0.0),
            str(doc.get("id")))  # fmt: skip


def _number(value: Any, default: float) -> float:
    """``value`` if it is a finite number, else ``default``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default
