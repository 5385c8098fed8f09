"""The runners' batched bucket verbs: many outcomes or leases in one request and one
transaction, each still recorded or refused on its own, and a runner's whole turn
(outcomes, then more works) in one step.

``Buckets`` has these as its own (``class Buckets(BatchVerbs, ...)``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from workflow.errors import WorkflowError
from workflow.store.base import Doc, Store
from workflow.wire import HeldAttempt, Outcome, Withdraw


class BatchVerbs:
    """Outcomes, leases and claims in batches."""

    store: Store

    # Defined by ``Buckets``: the per-thread batch state, one outcome, one lease, one
    # claim.
    _local: threading.local
    complete: Callable[..., Doc]
    heartbeat: Callable[..., Doc]
    withdraw: Callable[..., list[Doc]]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several verbs in one transaction where the store can; each still succeeds or
        fails on its own (``Store.batch``). What listeners are told inside (``tell``) is
        told once it has ended, when others can see its changes."""
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        if local.depth == 1:
            local.told = []
        try:
            with self.store.batch():
                yield
        finally:
            local.depth -= 1
            if not local.depth:
                told, local.told = local.told, []
                for listener, what in told:
                    listener(what)

    def tell(self, listener: Callable[[Any], None], what: Any) -> None:
        """``listener(what)`` now, or, inside a batch, once the batch has ended."""
        if getattr(self._local, "depth", 0):
            self._local.told.append((listener, what))
        else:
            listener(what)

    def complete_many(self, outcomes: Sequence[Outcome], *, holder: str | None = None,
                      by: str | None = None) -> list[Doc]:  # fmt: skip
        """Record several outcomes in one transaction; each is recorded or refused on its
        own. ``holder`` and ``by`` apply to each, as in ``complete``.

        Returns:
            Per outcome, in order: ``{"id", "ok": True, "status"}`` or ``{"id", "ok":
            False, "status_code", "error", "message", ...}``.
        """

        def complete(outcome: Outcome) -> Doc:
            return {"status": self.complete(outcome, holder=holder, by=by)["status"]}

        return self._one_by_one(outcomes, complete)

    def heartbeat_many(self, held: Sequence[HeldAttempt], lease: float | None = None, *,
                       holder: str | None = None) -> list[Doc]:  # fmt: skip
        """Extend the leases of several running attempts in one transaction; each is
        extended or refused on its own.

        Returns:
            Per work, in order: ``{"id", "ok": True, "expires"}`` or the error, as in
            ``complete_many``.
        """

        def extend(work: HeldAttempt) -> Doc:
            extended = self.heartbeat(work.id, work.attempt, lease, holder)
            return {"expires": extended["lease"]["expires"]}

        return self._one_by_one(held, extend)

    def _one_by_one(self, items: Sequence[Any], act: Callable[[Any], Doc]) -> list[Doc]:
        """``act`` on each item (each with an ``id``) in one transaction, each succeeding
        or failing alone: ``{"id", "ok": True, **what act returned}`` or ``{"id", "ok":
        False, "status_code", "error", "message", ...}`` per item, in order."""
        replies: list[Doc] = []
        with self.batch():
            for item in items:
                try:
                    replies.append({"id": item.id, "ok": True, **act(item)})
                except WorkflowError as exc:
                    replies.append({"id": item.id, "ok": False,
                                    "status_code": exc.status_code, **exc.to_dict()})  # fmt: skip
        return replies

    def exchange(self, outcomes: Sequence[Outcome], want: Withdraw, *,
                 holder: str | None = None, by: str | None = None
                 ) -> tuple[list[Doc], list[Doc]]:  # fmt: skip
        """Record ``outcomes`` (as ``complete_many``), then claim more works (as
        ``withdraw``), in one transaction where the backend can: a runner's turn of its
        loop in one step.

        Returns:
            The replies of ``complete_many`` and the claimed works.
        """
        with self.batch():
            replies = self.complete_many(outcomes, holder=holder, by=by) if outcomes else []
            return replies, self.withdraw(want, by=by)
