"""The wire shapes: what the bucket and results verbs take and give.

One model per request, written once and used everywhere: the in-process verbs take
them (``workflow.buckets``, ``workflow.results``), the routes validate request bodies
with them, the client sends them, and the runner journals its outcomes as them. An
``Outcome`` has two shapes only: this model and its JSON.

A leaf module: it imports nothing of the server, so a runner host loads it freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from workflow.history import ActionEntry, ErrorInfo, NodeEntry
from workflow.notices import Rule, asks
from workflow.problems import invalid
from workflow.wire_search import MAX_PAGE as MAX_PAGE  # the search's shapes, given here too
from workflow.wire_search import SORT_FIELDS as SORT_FIELDS
from workflow.wire_search import Page as Page
from workflow.wire_search import Search as Search
from workflow.wire_search import search as search
from workflow.work import MAX_INT, Int64, Notify, Work, new_id

Doc = dict[str, Any]
#: A store query: a Mongo-style filter, checked (``workflow.filters``).
Query = dict[str, Any]
#: Longest lease or timeout, in seconds (three days).
LONGEST = 259200


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a no-op, and
    non-finite numbers (the edge refuses them in bodies; this holds in-process too)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def wire(self) -> Doc:
        """The request as JSON: what is sent (and, for an outcome, journaled), without
        the fields left unset."""
        return self.model_dump(mode="json", exclude_none=True)


# -- the runners' verbs ---------------------------------------------------------------


def deposit_payloads(works: Sequence[Work | Doc]) -> list[Doc]:
    """What depositing ``works`` sends: a ``Work`` without an id is given one (so a
    repeated deposit is harmless) and sends every field set, without the unset ones a
    pipeline may give defaults for; a document goes as it is."""
    out = []
    for work in works:
        if not isinstance(work, Work):
            out.append(work)
            continue
        if work.id is None:
            work.id = new_id()
        payload = work.payload()
        for name in DEFAULTABLE:
            if name not in work.model_fields_set:
                payload.pop(name)
        out.append(payload)
    return out


class Deposit(RootModel[Any]):
    """A deposit's body: one work or a list of them, as JSON (``Buckets.deposit`` checks
    each work and says which is wrong)."""

    @property
    def works(self) -> Any:
        """The works deposited (a single work as a list of one)."""
        return [self.root] if isinstance(self.root, dict) else self.root


class DepositOptions(Strict):
    """A deposit's query: ``return_ids`` answers with the ids instead of ``true``."""

    return_ids: bool = False


#: Longest a withdraw may wait for work, in seconds.
LONGEST_WAIT = 30.0


class Withdraw(Strict):
    """Claim up to ``limit`` works of ``pipelines`` (None: every pipeline) matching every
    given filter, with a lease of ``lease`` seconds (None: the work's timeout).

    With ``wait`` (seconds), a server with nothing to hand out holds the request until
    a work it can claim arrives (a deposit, a requeue, a resume, ...) or the time is up;
    then it answers, with the works or with none."""

    pipelines: list[str] | None = Field(default=None, max_length=100)
    site: str | None = None
    tags: list[str] | None = None
    event: list[Int64] | None = None
    user: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    parent: list[str] | None = None
    limit: int = Field(default=1, ge=1, le=1000)
    lease: float | None = Field(default=None, gt=0, le=LONGEST)
    runner: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=200)
    wait: float = Field(default=0.0, ge=0, le=LONGEST_WAIT)

    def query(self) -> Query:
        """The filters as a store query: equality on site, user and priority; any of the
        tags, events or parent pipelines."""
        return plain_query(site=self.site, user=self.user, priority=self.priority,
                           tags=self.tags, event=self.event, parent=self.parent)  # fmt: skip


def plain_query(*, site: str | None = None, user: str | None = None,
                priority: int | None = None, tags: list[str] | None = None,
                event: list[int] | None = None, parent: list[str] | None = None
                ) -> Query:  # fmt: skip
    """The store query for plain filters (see ``Withdraw.query``)."""
    query: Query = {}
    for name, value in (("site", site), ("user", user), ("priority", priority)):
        if value is not None:
            query[name] = value
    for path, values in (("tags", tags), ("event", event), ("config.parent", parent)):
        if values:
            query[path] = {"$in": list(values)}
    return query


#: Most bytes of an attempt's log sent at once (its text may have fewer characters).
LOG_CHUNK = 1 << 20
#: Bytes of each attempt's log the store keeps, by default (``WORKFLOW_LOG_LIMIT``).
LOG_LIMIT = 1 << 20


class LogChunk(Strict):
    """Bytes ``offset`` to ``end`` of an attempt's log, as text (bytes that are not
    UTF-8 shown as U+FFFD). With ``file``, the whole log is that file of the archive."""

    offset: int = Field(ge=0, le=MAX_INT)
    end: int = Field(ge=0, le=MAX_INT)
    text: str = Field(default="", max_length=LOG_CHUNK)
    file: str | None = Field(default=None, max_length=4096)


#: What a running graph's node is doing.
NodeState = Literal["running", "success", "failure"]


class Progress(Strict):
    """What a running attempt did since its runner last said: the new part of its log,
    and, for a graph, the state of each node started so far."""

    id: str = Field(max_length=64)
    attempt: int = Field(ge=1, le=MAX_INT)
    log: LogChunk | None = None
    nodes: dict[str, NodeState] | None = Field(default=None, max_length=10_000)


class Outcome(Strict):
    """The outcome of attempt ``attempt`` of work ``id``: what a runner reports, what its
    journal keeps (as JSON) and what the server records in the work's history.

    ``retry`` asks for another attempt after ``retry_delay`` seconds without using one
    up. ``reason`` says more than the status (``timeout``, ``aborted``, ...)."""

    id: str = Field(default="", max_length=64)
    attempt: int = Field(default=0, ge=0, le=MAX_INT)
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
    #: The end of the attempt's log its runner had not sent yet, and where the whole is.
    log: LogChunk | None = None
    provenance: dict[str, Any] | None = Field(default=None, max_length=16)  # runner/provenance.py


class HeldAttempt(Strict):
    """A running attempt, by work id and attempt number."""

    id: str
    attempt: int = Field(ge=1, le=MAX_INT)


class Heartbeat(Strict):
    """Extend the lease of a running attempt."""

    attempt: int = Field(ge=1, le=MAX_INT)
    lease: float | None = Field(default=None, gt=0, le=LONGEST)


class HeartbeatMany(Strict):
    """Extend the leases of several running attempts."""

    works: list[HeldAttempt] = Field(min_length=1, max_length=1000)
    lease: float | None = Field(default=None, gt=0, le=LONGEST)


class ProgressMany(Strict):
    """What several running attempts did since their runner last said."""

    works: list[Progress] = Field(min_length=1, max_length=1000)


class CompleteMany(Strict):
    """Outcomes of several attempts, recorded one by one."""

    works: list[Outcome] = Field(min_length=1, max_length=1000)


class Exchange(Strict):
    """Outcomes to record, then works to claim: a runner's turn in one request."""

    complete: list[Outcome] = Field(default_factory=list, max_length=1000)
    withdraw: Withdraw


class EndWait(Strict):
    """End the held withdraws of ``runner`` now, with no works (a runner that stops)."""

    runner: str = Field(max_length=200)


class RunnerInfo(Strict):
    """A runner announcing itself: who it is, where it runs and what work it takes.
    ``pipelines`` None: every pipeline; ``prefetch`` None: it chooses as it goes."""

    id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=200)
    pid: int | None = Field(default=None, ge=0, le=MAX_INT)
    version: str | None = Field(default=None, max_length=100)
    pipelines: list[str] | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=100)
    concurrency: int = Field(default=1, ge=1, le=10_000)
    prefetch: int | None = Field(default=None, ge=1, le=1000)
    lease: float = Field(default=60.0, gt=0, le=LONGEST)
    runs: str | None = Field(default=None, max_length=500)
    start: float | None = Field(default=None, ge=0)


class Release(Strict):
    """Hand a running attempt back to the queue without using up an attempt."""

    attempt: int = Field(ge=1, le=MAX_INT)
    reason: str = Field(default="released", max_length=200)


# -- the operators' verbs -------------------------------------------------------------


class Change(Strict):
    """New priority and/or retries for a queued work."""

    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)


class RetryRequest(Strict):
    """Queue a finished work again, with these parameters instead of its own if given;
    a graph work ``from_failure`` reuses the outputs its nodes had (``workflow.graph.cache``)."""

    parameters: dict[str, Any] | None = None
    from_failure: bool = False


class Delete(Strict):
    """Works to delete from the buckets."""

    ids: list[str] = Field(min_length=1, max_length=10_000)


class BulkFilter(Strict):
    """Which bucket works a bulk action is about; every field narrows it."""

    pipeline: list[str] | None = Field(default=None, max_length=100)
    status: list[Literal["queued", "running"]] | None = None
    site: str | None = None
    user: str | None = None
    tags: list[str] | None = Field(default=None, max_length=100)
    priority: int | None = Field(default=None, ge=1, le=5)

    def query(self) -> Query:
        """The filter as a store query."""
        query = plain_query(site=self.site, user=self.user, priority=self.priority,
                            tags=self.tags)  # fmt: skip
        for name, values in (("pipeline", self.pipeline), ("status", self.status)):
            if values:
                query[name] = {"$in": list(values)}
        return query


class Bulk(Strict):
    """Cancel, or change priority and retries of, every work the filter matches.

    Without ``confirm`` nothing is done and the reply says how many works match; with
    it, the action runs only if no more than ``confirm`` works match."""

    filter: BulkFilter = Field(default_factory=BulkFilter)
    action: Literal["cancel", "change"]
    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)
    confirm: int | None = Field(default=None, ge=0, le=MAX_INT)


class Confirm(Strict):
    """Without ``confirm`` nothing is done and the reply says how many works match;
    with it, the action runs only if no more than ``confirm`` works match."""

    confirm: int | None = Field(default=None, ge=0, le=MAX_INT)


class RetryMatching(Confirm):
    """Retry what a search matches (as ``Confirm``); graph works ``from_failure``."""

    from_failure: bool = False


class BulkReply(BaseModel):
    """What a bulk action matched, did and skipped (with the first reasons)."""

    matched: int
    done: int
    skipped: int
    reasons: list[dict[str, str]]


class View(BaseModel):
    """CHIME's view request: a filter, a projection and a page."""

    query: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] = Field(default_factory=dict)
    skip: int = Field(default=0, ge=0, le=MAX_INT)
    limit: int | None = Field(default=100, ge=0, le=MAX_INT)


class CountRequest(BaseModel):
    """CHIME's count request."""

    query: dict[str, Any] = Field(default_factory=dict)


# -- results: the search's shapes, in workflow.wire_search --------------------------

# -- pipelines ------------------------------------------------------------------------

#: Changes an operator may make to a pipeline's settings.
CHANGEABLE = ("defaults", "paused", "rules")
#: Changes of a pipeline's settings kept in its history, newest last.
HISTORY = 20
#: Work fields a pipeline may give defaults for.
DEFAULTABLE = ("priority", "retries", "timeout", "backoff", "notify")


class Defaults(BaseModel):
    """Values applied to a new deposit that does not set them itself."""

    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)
    timeout: int | None = Field(default=None, ge=1, le=LONGEST)
    backoff: float | None = Field(default=None, ge=0, le=86400)
    #: Whom to tell of what, for a work whose own ``notify`` asks for nothing (CHIME's
    #: clients always send one, blank).
    notify: Notify | None = None


class PipelineSettings(BaseModel):
    """What an operator set for one pipeline."""

    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    paused: bool = False
    #: Alerts on the pipeline as a whole (``workflow.notices.Rule``), each its own name.
    rules: list[Rule] = Field(default_factory=list, max_length=20)
    history: list[ActionEntry] = Field(default_factory=list, max_length=HISTORY)

    @field_validator("rules")
    @classmethod
    def _named_once(cls, rules: list[Rule]) -> list[Rule]:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError("two rules have the same name")
        return rules


def parse_settings(raw: Any, where: str = "settings") -> PipelineSettings:
    """Validate ``raw`` as pipeline settings, raising ``InvalidWork`` naming the field."""
    try:
        return PipelineSettings.model_validate(raw or {})
    except ValidationError as exc:
        raise invalid(exc, where, PipelineSettings) from exc


def with_defaults(raw: Doc, defaults: Doc) -> Doc:
    """``raw`` with the pipeline ``defaults`` filled in where ``raw`` has no value (for
    ``notify``: where it asks for nothing)."""
    filled = dict(raw)
    for name in DEFAULTABLE:
        unset = not asks(filled.get(name)) if name == "notify" else filled.get(name) is None
        if unset and defaults.get(name) is not None:
            filled[name] = defaults[name]
    return filled
