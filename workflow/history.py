"""A work's history: each attempt (with its node runs, its log and its provenance),
each operator's action and each notification delivered (or given up on), one entry
each (``workflow.work`` gives these too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

#: How an attempt ended.
Outcome = Literal["success", "failure", "lost", "released", "cancelled", "retry"]


class ErrorInfo(BaseModel):
    """Why an attempt failed: exception type, message and the tail of the traceback."""

    type: str | None = None
    message: str | None = None
    traceback: str | None = None


class NodeEntry(BaseModel):
    """One run of one node of a graph work, within an attempt."""

    node: str
    label: str | None = None
    run: int = Field(default=1, ge=1)
    started: float
    stopped: float
    outcome: Literal["success", "failure"]
    error: ErrorInfo | None = None
    host: str | None = None
    pid: int | None = None
    #: Its outputs were kept from an earlier run of the same task and inputs.
    reused: bool | None = None


class LogInfo(BaseModel):
    """Where an attempt's log is: how many bytes it wrote (the store keeps the last
    ``WORKFLOW_LOG_LIMIT`` of them), and the whole log's file in the archive, if any."""

    size: int = Field(default=0, ge=0)
    file: str | None = None


class AttemptEntry(BaseModel):
    """One finished attempt in a work's history (with its node runs, for a graph)."""

    kind: Literal["attempt"] = "attempt"
    attempt: int
    runner: str | None = None
    host: str | None = None
    claimed: float | None = None
    started: float | None = None
    stopped: float | None = None
    outcome: Outcome
    reason: str | None = None
    error: ErrorInfo | None = None
    nodes: list[NodeEntry] | None = None
    log: LogInfo | None = None
    provenance: dict[str, Any] | None = None  # python, code, graph, host, image, runner
    #: The name of the access token that reported the outcome (None on an open server
    #: and for what the server records itself: lost leases, timeouts).
    by: str | None = None


class ActionEntry(BaseModel):
    """An operator's action on a work (cancel, priority change, ...)."""

    kind: Literal["action"] = "action"
    action: str
    at: float
    by: str | None = None
    changes: dict[str, Any] | None = None


class DeliveryEntry(BaseModel):
    """A notification about the work, delivered to its target or given up on
    (``workflow.notify``); ``key`` is what the receiver was told to drop repeats by."""

    kind: Literal["delivery"] = "delivery"
    at: float
    key: str
    target: str
    event: str
    attempt: int | None = None
    outcome: Literal["delivered", "failed"]
    tries: int = Field(ge=0)
    #: Why the last try failed (the receiver's answer, or the error on the way).
    detail: str | None = None


HistoryEntry = Annotated[AttemptEntry | ActionEntry | DeliveryEntry, Field(discriminator="kind")]
