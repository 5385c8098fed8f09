"""The verbs, as typed protocols: what ``Buckets`` and ``Results`` do in-process and
``Client`` does over HTTP, with the same names, arguments and replies.

Arguments are the wire shapes (``workflow.wire``) or plain values; replies are works as
the JSON documents the server sends. In-process, the bucket verbs take two more
keyword arguments the server fills from the caller's token: ``by`` (recorded in the
history) and ``holder`` (a runner token reports only on the works it claimed).

A new verb goes here, in ``Buckets`` or ``Results`` (its one definition), as one line
in a route (``workflow.service``) and as one method of ``Client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from workflow.wire import (
    Bulk,
    BulkReply,
    Doc,
    HeldAttempt,
    Outcome,
    PipelineSettings,
    Progress,
    RunnerInfo,
    Search,
    Withdraw,
)
from workflow.work import Work


class BucketVerbs(Protocol):
    """Queued and running works: the runners' verbs, then the operators'."""

    def deposit(self, works: Sequence[Work | Doc]) -> list[str]:
        """Queue new works; their ids, in order (a work without one is given one)."""
        ...

    def withdraw(self, want: Withdraw) -> list[Doc]:
        """Claim up to ``want.limit`` queued works, highest priority first, then oldest."""
        ...

    def exchange(self, outcomes: Sequence[Outcome], want: Withdraw
                 ) -> tuple[list[Doc], list[Doc]]:  # fmt: skip
        """Record ``outcomes`` (as ``complete_many``), then claim (as ``withdraw``)."""
        ...

    def heartbeat(self, id: str, attempt: int, lease: float | None = None) -> Doc:
        """Extend the lease of a running attempt."""
        ...

    def heartbeat_many(self, held: Sequence[HeldAttempt], lease: float | None = None
                       ) -> list[Doc]:  # fmt: skip
        """Extend several leases; per work ``{"id", "ok", "expires"}`` or its error."""
        ...

    def complete(self, outcome: Outcome) -> Doc:
        """Record the outcome of a running attempt; the work as it is then."""
        ...

    def progress(self, reports: Sequence[Progress]) -> list[Doc]:
        """Record what running attempts wrote and their nodes' states; per work
        ``{"id", "ok", "size"}`` or its error."""
        ...

    def logs(self, id: str, attempt: int | None = None, after: int | None = None) -> Doc:
        """The log of an attempt (the end the store keeps), or what came after ``after``."""
        ...

    def complete_many(self, outcomes: Sequence[Outcome]) -> list[Doc]:
        """Record several outcomes; per outcome ``{"id", "ok", "status"}`` or its error."""
        ...

    def release(self, id: str, attempt: int, reason: str = "released") -> Doc:
        """Hand a running attempt back to the queue without using up an attempt."""
        ...

    def announce(self, info: RunnerInfo) -> Doc:
        """Put a starting runner on record; it as the registry shows it."""
        ...

    def goodbye(self, id: str) -> Doc:
        """Mark a runner as stopped; it as the registry shows it."""
        ...

    def runners(self) -> list[Doc]:
        """Every runner on record, with its state and the works it holds."""
        ...

    def cancel(self, id: str) -> Doc:
        """Cancel a queued or running work."""
        ...

    def retry(self, id: str, parameters: dict[str, Any] | None = None, *,
              from_failure: bool = False) -> Doc:  # fmt: skip
        """Queue a finished work again as a new, linked work (a graph work reusing its
        nodes' outputs ``from_failure``); the new work."""
        ...

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None
               ) -> Doc:  # fmt: skip
        """Change priority and/or retries of a queued work."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Delete works from the buckets; how many existed."""
        ...

    def get(self, id: str) -> Doc:
        """A work by id, queued, running or finished."""
        ...

    def why(self, id: str) -> Doc:
        """A work's status and, if queued, why it is not running (``reasons``)."""
        ...

    def works(self, pipelines: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, *, skip: int = 0, limit: int = 100
              ) -> list[Doc]:  # fmt: skip
        """Works in the buckets, newest first."""
        ...

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per pipeline and status, over the buckets and the results."""
        ...

    def pipelines(self) -> list[Doc]:
        """Every known pipeline with its settings and counts."""
        ...

    def settings(self, pipeline: str) -> PipelineSettings:
        """A pipeline's settings."""
        ...

    def configure(self, pipeline: str, changes: dict[str, Any]) -> PipelineSettings:
        """Change a pipeline's ``defaults`` and/or ``paused``."""
        ...

    def bulk(self, request: Bulk) -> BulkReply:
        """Act on every bucket work a filter matches, the count confirmed."""
        ...

    def expire(self) -> int:
        """Record every lease that ran out as a lost attempt; how many."""
        ...


class ResultVerbs(Protocol):
    """Finished works."""

    def search(self, search: Search) -> tuple[list[Doc], int]:
        """One page of matching works, and how many match in all."""
        ...

    def result(self, id: str) -> Doc:
        """A finished work by id."""
        ...

    def retry_matching(self, search: Search, confirm: int | None = None, *,
                       from_failure: bool = False) -> BulkReply:  # fmt: skip
        """Queue again every finished work ``search`` matches, each as a new linked work."""
        ...


if TYPE_CHECKING:  # mypy holds each implementation to the protocols above
    from workflow.buckets import Buckets
    from workflow.client import Client
    from workflow.results import Results

    def _speak_the_verbs(buckets: Buckets, results: Results, client: Client
                         ) -> list[tuple[BucketVerbs, ResultVerbs]]:  # fmt: skip
        return [(buckets, results), (client, client)]
