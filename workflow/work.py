"""The Work record: the CHIME/FRB field set, its constraints and its lifecycle as data.

A ``Work`` is data. ``deposit``, ``withdraw``, ``update`` and ``delete`` exist because
that is what users type, but they only hand the record to a client resolved from the
configuration (``WORKFLOW_URL``, ``WORKFLOW_TOKEN``); the model never talks to a store.

Retries: a work is attempted at most ``1 + retries`` times. ``attempt`` counts the
attempts started so far (the server increments it on every claim), so a work whose
attempt ``N`` fails is queued again while ``N < 1 + retries`` and is otherwise finished
as ``failure``. (CHIME compares ``attempt`` with ``retries`` directly, which gives one
attempt fewer; see the README.)
"""

from __future__ import annotations

import functools
import getpass
import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workflow.errors import InvalidWork, ResultsTooLarge, WorkflowError
from workflow.history import HistoryEntry
from workflow.older import upgrade
from workflow.problems import invalid

if TYPE_CHECKING:
    from workflow.client import Client

Status = Literal["created", "queued", "running", "success", "failure", "cancelled"]

#: Every status a work can have, in lifecycle order.
STATUSES: tuple[str, ...] = ("created", "queued", "running", "success", "failure", "cancelled")
#: Work in a bucket, waiting or being worked on.
ACTIVE = frozenset({"queued", "running"})
#: Finished work; it lives in the results store.
TERMINAL = frozenset({"success", "failure", "cancelled"})
#: The allowed status changes. Anything not listed is a ``TransitionConflict``.
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"queued"}),
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"success", "failure", "queued", "cancelled"}),
    "success": frozenset(),
    "failure": frozenset(),
    "cancelled": frozenset(),
}


PIPELINE_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,128}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: What a runner can import and call: ``package.module.function`` or ``package.module:function``.
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*$")
#: Default limit on the size of ``results`` as serialized JSON, in bytes.
RESULTS_LIMIT = 4_000_000
#: Largest integer the stores keep (SQLite and BSON: 64 bits, signed).
MAX_INT = 2**63 - 1
#: A number a store can keep as an integer.
Int64 = Annotated[int, Field(ge=-MAX_INT - 1, le=MAX_INT)]
#: The CHIME/FRB fields, in the order CHIME serializes them.
CHIME_FIELDS: tuple[str, ...] = (
    "pipeline", "site", "user", "function", "parameters", "command", "results",
    "products", "plots", "tags", "event", "id", "creation", "start", "stop",
    "attempt", "status", "timeout", "retries", "priority", "config", "notify",
)  # fmt: skip


def default_user() -> str:
    """``WORKFLOW_USER``, else the login name, else ``unknown``."""
    return os.environ.get("WORKFLOW_USER") or _login()


@functools.cache
def _login() -> str:
    """The login name (looked up once: it may mean reading the password database)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry inside some containers
        return "unknown"


class Archive(BaseModel):
    """What happens to results, products and plots when a work finishes."""

    model_config = ConfigDict(extra="forbid")

    results: bool = True
    products: Literal["bypass", "copy", "delete", "move"] = "copy"
    plots: Literal["bypass", "copy", "delete", "move"] = "copy"
    logs: Literal["bypass", "copy", "delete", "move"] = "move"

    @model_validator(mode="before")
    @classmethod
    def _old_pass(cls, data: Any) -> Any:
        # chime-frb-api 3.x wrote "pass"; CHIME's own transfer daemon maps it to "bypass".
        if isinstance(data, dict):
            return {k: ("bypass" if v == "pass" else v) for k, v in data.items()}
        return data


class Config(BaseModel):
    """Lifecycle configuration of a work (CHIME's ``config``)."""

    model_config = ConfigDict(extra="forbid")

    archive: Archive = Field(default_factory=Archive)
    metrics: bool = False
    parent: str | None = None
    orgs: list[str] = Field(default_factory=lambda: ["chimefrb"])
    teams: list[str] | None = None


class Slack(BaseModel):
    """CHIME's Slack notification: the channel (a bot target sends there), members to
    mention, a message of one's own, and whether to add the results, products and
    plots."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str | None = None
    member_ids: list[str] | None = None
    message: str | None = None
    results: bool | None = None
    products: bool | None = None
    plots: bool | None = None
    blocks: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None


#: What happens to a work that its ``notify`` may tell of: it succeeded, it failed for
#: good (no attempts left), or an attempt failed and it is queued again.
Event = Literal["success", "failure", "retrying"]
#: The events told of when ``notify`` says none: the work finished, either way.
FINISHED: tuple[Event, ...] = ("success", "failure")
#: A target's name, as the server's configuration gives it (``workflow.notify``).
TARGET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Send(BaseModel):
    """Tell a target, configured on the server by name, of some events of the work."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=TARGET)
    on: list[Event] = Field(default_factory=lambda: list(FINISHED), min_length=1)


class Notify(BaseModel):
    """Who is told what of the work (CHIME's ``notify``, and more).

    ``slack`` goes to the server's Slack target (``WORKFLOW_NOTIFY_SLACK``) once it
    names a channel, members, a message or blocks, on the events of ``on``; each of
    ``to`` goes to its own target (a webhook, a mail list, another Slack)."""

    model_config = ConfigDict(extra="forbid")

    slack: Slack = Field(default_factory=Slack)
    on: list[Event] | None = Field(default=None, min_length=1)
    to: list[Send] | None = Field(default=None, max_length=10)


class Lease(BaseModel):
    """Who holds a running work and until when."""

    runner: str | None = None
    host: str | None = None
    #: The name of the access token that claimed it: only that token's runner may report.
    by: str | None = None
    claimed: float
    heartbeat: float
    expires: float


class Work(BaseModel):
    """A unit of work: what to run, with which parameters, and everything that happened."""

    # NaN and Infinity are no JSON numbers: refused here too, for works made in-process.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    pipeline: str = Field(min_length=1, max_length=128)
    site: str = Field(default_factory=lambda: os.environ.get("WORKFLOW_SITE", "local"))
    user: str = Field(default_factory=default_user)
    function: str | None = None
    parameters: dict[str, Any] | None = None
    command: list[str] | None = None
    results: dict[str, Any] | None = None
    products: list[str] | None = None
    plots: list[str] | None = None
    tags: list[str] | None = None
    event: list[Int64] | None = None
    id: str | None = None
    creation: float | None = Field(default=None, validate_default=True)
    start: float | None = None
    stop: float | None = None
    attempt: int = Field(default=0, ge=0)
    status: Status = "created"
    timeout: int = Field(default=3600, ge=1, le=259200)
    retries: int = Field(default=2, ge=0, le=5)
    priority: int = Field(default=3, ge=1, le=5)
    config: Config = Field(default_factory=Config)
    notify: Notify = Field(default_factory=Notify)
    # What CHIME lacks.
    graph: dict[str, Any] | str | None = None
    backoff: float | None = Field(default=None, ge=0, le=86400)
    not_before: float | None = None
    lease: Lease | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    #: A running graph's nodes as they start and end: ``{"nodes": {id: state}}``, state
    #: ``running``, ``success`` or ``failure`` (set by its runner, cleared as it ends).
    progress: dict[str, Any] | None = None
    #: Fields of older CHIME clients with no counterpart here, kept as sent (older.py).
    legacy: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_clients(cls, data: Any) -> Any:
        return upgrade(data, cls)

    @field_validator("pipeline")
    @classmethod
    def _pipeline_name(cls, value: str) -> str:
        if not PIPELINE_PATTERN.match(value):
            raise ValueError("pipeline names use only ASCII letters, digits and hyphens")
        return value

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str | None) -> str | None:
        if value is not None and not ID_PATTERN.match(value):
            raise ValueError("ids are 1 to 64 ASCII letters, digits, '_' or '-'")
        return value

    @field_validator("creation")
    @classmethod
    def _creation_now(cls, value: float | None) -> float:
        return time.time() if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _function_or_command(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [name for name in ("function", "command", "graph") if data.get(name)]
            if len(given) > 1:
                raise ValueError("give one of function, command or graph, not "
                                 f"{' and '.join(given)}")
        return data

    @field_validator("graph")
    @classmethod
    def _graph_loads(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        """An inline graph must load (its tasks are imported only where it runs); a path
        or package resource, and a graph whose sub-graphs are files, is read by the runner."""
        nodes = value.get("nodes") if isinstance(value, dict) else None
        by_file = isinstance(nodes, list) and any(
            isinstance(n, dict) and n.get("task_type") == "graph"
            and not isinstance(n.get("task_identifier"), dict) for n in nodes)
        if isinstance(value, dict) and not by_file:
            from workflow.graph.loading import load  # graph modules only for works with graphs

            try:
                load(value)
            except WorkflowError as exc:
                raise ValueError(exc.message) from None
        return value

    @property
    def max_attempts(self) -> int:
        """How many attempts this work gets at most: ``1 + retries``."""
        return 1 + self.retries

    def payload(self) -> dict[str, Any]:
        """The work as a JSON-ready dictionary, CHIME fields first."""
        return self.model_dump(mode="json")

    def __getitem__(self, name: str) -> Any:
        """A field as JSON, as the verbs return works: ``work["status"]`` reads the same
        on a ``Work`` and on a work document.

        Raises:
            KeyError: no such field.
        """
        if name not in type(self).model_fields:
            raise KeyError(name)
        return self.model_dump(mode="json", include={name})[name]

    # -- what users type; each call goes through a client built from the environment --

    def deposit(self, client: Client | None = None) -> str:
        """Deposit this work and return its id (chosen here, so a retried deposit is safe)."""
        with _using(client) as http:
            return http.deposit([self])[0]

    @classmethod
    def withdraw(cls, pipeline: str | list[str], client: Client | None = None, **filters: Any
                 ) -> Work | None:  # fmt: skip
        """Claim the next work of ``pipeline`` (highest priority, then oldest), or None;
        ``filters`` are the other fields of ``workflow.wire.Withdraw``."""
        from workflow.wire import Withdraw

        pipelines = [pipeline] if isinstance(pipeline, str) else pipeline
        with _using(client) as http:
            found = http.withdraw(Withdraw(pipelines=pipelines, limit=1, **filters))
        return cls.model_validate(found[0]) if found else None

    def update(self, client: Client | None = None) -> Work:
        """Send this work's outcome: ``status`` success or failure finishes the attempt;
        the work as it is then."""
        if self.id is None:
            raise ValueError("this work has no id: it was never deposited")
        with _using(client) as http:
            http.update([self])
            return Work.model_validate(http.get(self.id))

    def wait(self, timeout: float | None = None, client: Client | None = None) -> Work:
        """This work once it has finished (or, after ``timeout`` seconds, as it is then):
        the server answers as soon as it finishes."""
        if self.id is None:
            raise ValueError("this work has no id: it was never deposited")
        with _using(client) as http:
            (doc,) = http.wait([self.id], timeout)
        return Work.model_validate(doc)

    def delete(self, client: Client | None = None) -> bool:
        """Delete this work from its bucket."""
        if self.id is None:
            raise ValueError("this work has no id: it was never deposited")
        with _using(client) as http:
            return http.delete([self.id]) > 0


@contextmanager
def _using(client: Client | None) -> Iterator[Client]:
    """``client``, or one for ``WORKFLOW_URL`` and ``WORKFLOW_TOKEN``, closed afterwards."""
    if client is not None:
        yield client
        return
    from workflow.client import Client

    with Client.from_env() as made:
        yield made


def results_size(results: dict[str, Any] | None) -> int:
    """Size of ``results`` as compact serialized JSON, in bytes."""
    if not results:
        return 0
    return len(json.dumps(results, separators=(",", ":"), default=str).encode())


def check_results_size(results: dict[str, Any] | None, limit: int = RESULTS_LIMIT) -> None:
    """Raise ``ResultsTooLarge`` when ``results`` serialize to more than ``limit`` bytes."""
    size = results_size(results)
    if size > limit:
        raise ResultsTooLarge(
            f"results are {size} bytes as JSON, more than the limit of {limit}; "
            "store large data as products and keep results small",
            field="results", size=size, limit=limit,
        )  # fmt: skip


_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


def new_id() -> str:
    """A 24-hex id that sorts by creation time, shaped like a MongoDB ObjectId."""
    # Time, then a per-process counter, then randomness: ids from one process sort in
    # creation order, and ids from different processes do not collide.
    return f"{int(time.time()):08x}{next(_counter) % 0xFFFFFF:06x}{os.urandom(5).hex()}"


def check_function(work: Work, where: str = "work") -> None:
    """A work to run names a function a runner can import and call (a finished work,
    from elsewhere, may name anything).

    Raises:
        InvalidWork: it names something else.
    """
    if work.function is not None and not DOTTED.match(work.function):
        raise InvalidWork(f"{where}.function: {work.function!r} is not a dotted path to a "
                          "function, such as package.module.function or "
                          "package.module:function", field=f"{where}.function")


def parse_work(raw: Any, where: str = "work") -> Work:
    """Validate ``raw`` as a Work, turning pydantic's error into ``InvalidWork``.

    Args:
        raw: A dict as received (JSON).
        where: Location prefix for the field name in the error, e.g. ``works[3]``.

    Raises:
        InvalidWork: naming every bad field and why (``workflow.problems``).
    """
    try:
        return Work.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc, where, Work) from exc
