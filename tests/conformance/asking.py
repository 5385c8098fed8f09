"""The requests the conformance tests make, in short."""

from __future__ import annotations

import uuid
from typing import Any

from workflow.client import Client
from workflow.wire import Bulk, BulkFilter, HeldAttempt, Outcome, RunnerInfo, Withdraw
from workflow.wire import search as find
from workflow.work import default_user

__all__ = ["HeldAttempt", "bulk", "delete_results", "ended", "find", "runner_of", "want", "who"]


def want(pipelines: str | list[str] | None, **fields: Any) -> Withdraw:
    """A withdraw request for ``pipelines`` (one name, a list, or None for all)."""
    return Withdraw(pipelines=[pipelines] if isinstance(pipelines, str) else pipelines,
                    **fields)  # fmt: skip


def ended(id: str, attempt: int, status: str, **fields: Any) -> Outcome:
    """The outcome of attempt ``attempt`` of work ``id``."""
    return Outcome(id=id, attempt=attempt, status=status, **fields)  # type: ignore[arg-type]


def bulk(action: str, *, confirm: int | None = None, priority: int | None = None,
         retries: int | None = None, **filter: Any) -> Bulk:
    """A bulk action on the bucket works ``filter`` matches."""
    return Bulk(action=action, confirm=confirm, priority=priority, retries=retries,  # type: ignore[arg-type]
                filter=BulkFilter(**filter))


def who(verbs: Any) -> str | None:
    """Whom the history names for an operator's action: over HTTP the name the client
    sends (an open server has no token names); in process nobody, unless the caller
    says (``by``)."""
    return default_user() if isinstance(verbs, Client) else None


def runner_of(pipeline: str, **fields: Any) -> RunnerInfo:
    """A runner taking ``pipeline``, with an id no other test uses."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    return RunnerInfo(**{"id": name, "name": name, "host": "h1", "pid": 7, "version": "9",
                         "pipelines": [pipeline], "concurrency": 1, "lease": 60.0, **fields})


def delete_results(results: Any, pipeline: str, ids: list[str]) -> int:
    """Delete finished works the way an admin does: over HTTP
    ``DELETE /results/results?PIPELINE=ID``, in process the results verb."""
    if not isinstance(results, Client):
        return int(results.delete(ids))
    reply = results.call("DELETE", "/results/results", params=[(pipeline, id) for id in ids])
    return int(reply[pipeline])
