"""The runners' batched bucket verbs: many outcomes or leases in one request and one
transaction, each still recorded or refused on its own, and a runner's whole turn
(outcomes, then more works) in one step.

``Buckets`` has these as its own (``class Buckets(BatchVerbs, ...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from workflow.errors import WorkflowError
from workflow.store.base import Doc, Store


class BatchVerbs:
    """Outcomes, leases and claims in batches."""

    store: Store

    # Defined by ``Buckets``: one outcome, one lease, one claim.
    complete: Callable[..., Doc]
    heartbeat: Callable[..., Doc]
    withdraw: Callable[..., list[Doc]]

    def complete_many(self, outcomes: list[dict[str, Any]], holder: str | None = None,
                      by: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Record several outcomes (each the keyword arguments of ``complete`` plus ``id``
        and ``attempt``) in one transaction; each is recorded or refused on its own.
        ``holder`` and ``by`` apply to each, as in ``complete``.

        Returns:
            Per outcome, in order: ``{"id", "ok": True, "status"}`` or ``{"id", "ok":
            False, "status_code", "error", "message", ...}``.
        """

        def complete(outcome: dict[str, Any]) -> dict[str, Any]:
            outcome = dict(outcome)
            id, attempt = outcome.pop("id"), outcome.pop("attempt")
            done = self.complete(id, attempt, outcome.pop("status"), **outcome,
                                 holder=holder, by=by)  # fmt: skip
            return {"status": done["status"]}

        return self._one_by_one(outcomes, complete)

    def heartbeat_many(self, works: list[dict[str, Any]], lease: float | None = None,
                       holder: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Extend the leases of several running attempts (each ``{"id", "attempt"}``) in
        one transaction; each is extended or refused on its own.

        Returns:
            Per work, in order: ``{"id", "ok": True, "expires"}`` or the error, as in
            ``complete_many``.
        """

        def extend(work: dict[str, Any]) -> dict[str, Any]:
            extended = self.heartbeat(work["id"], work["attempt"], lease, holder)
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
                 holder: str | None = None, **withdraw: Any
                 ) -> tuple[list[dict[str, Any]], list[Doc]]:  # fmt: skip
        """Record ``outcomes`` (as ``complete_many``), then claim more works (the keyword
        arguments of ``withdraw``), in one transaction where the backend can: a runner's
        turn of its loop in one step.

        Returns:
            The replies of ``complete_many`` and the claimed works.
        """
        with self.store.batch():
            by = withdraw.get("by")
            replies = self.complete_many(outcomes, holder, by) if outcomes else []
            return replies, self.withdraw(pipelines, **withdraw)
