"""Actions over every work a filter matches, each one recorded on its work.

An operator first asks how many works a filter matches (``confirm=None`` acts on
nothing and says), then confirms that number. When more works match by the time the
action runs, nothing is done (``CountChanged``): an action never touches more works
than were confirmed. Fewer is fine; works that finished or changed in between are
skipped, each with its reason. Every work is changed by its own compare-and-set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from workflow.errors import CountChanged, InvalidWork, LimitExceeded, WorkflowError
from workflow.store.base import Doc
from workflow.wire import Bulk, BulkReply

if TYPE_CHECKING:
    from workflow.buckets.verbs import Buckets

#: Most works one bulk action may touch; narrow the filter for more.
MAX_BULK = 100_000
#: Works changed per transaction, so runners are held up for a moment at most.
CHUNK = 200
#: Skipped works listed in a reply (all are counted).
LISTED = 50


def act_on_bucket(buckets: Buckets, request: Bulk, *, by: str | None) -> BulkReply:
    """Cancel, or change priority and retries of, every bucket work ``request.filter``
    matches (only queued works change)."""
    query, action = request.filter.query(), request.action
    priority, retries = request.priority, request.retries
    if action == "change":
        if priority is None and retries is None:
            raise InvalidWork("give priority and/or retries", field="priority")
        query = {**query, "status": "queued"}

        def one(id: str) -> Any:
            return buckets.change(id, priority=priority, retries=retries, by=by)
    elif action == "cancel":

        def one(id: str) -> Any:
            return buckets.cancel(id, by=by)
    else:
        raise InvalidWork(f"unknown action {action!r}; use cancel or change", field="action")
    docs = buckets.store.work.find(query, sort=[("creation", 1)], limit=MAX_BULK + 1)
    return _apply(buckets, (doc["id"] for doc in docs), len(docs), request.confirm, one)


def retry_results(buckets: Buckets, docs: Iterable[Doc], matched: int, *,
                  confirm: int | None, by: str | None, from_failure: bool = False
                  ) -> BulkReply:  # fmt: skip
    """Queue again, as new linked works, the finished works ``docs`` (``matched`` of them),
    graph works ``from_failure`` if asked."""
    return _apply(buckets, (doc["id"] for doc in docs), matched, confirm,
                  lambda id: buckets.retry(id, from_failure=from_failure, by=by))  # fmt: skip


def _apply(buckets: Buckets, ids: Iterator[str], matched: int, confirm: int | None,
           one: Callable[[str], Any]) -> BulkReply:  # fmt: skip
    reply = BulkReply(matched=matched, done=0, skipped=0, reasons=[])
    if confirm is None:
        return reply
    if matched > MAX_BULK:
        raise LimitExceeded(f"a bulk action touches at most {MAX_BULK} works; "
                            "narrow the filter", field="confirm", matched=matched)  # fmt: skip
    if matched > confirm:
        raise CountChanged(f"{matched} works match now, more than the {confirm} confirmed; "
                           "nothing was done", field="confirm", matched=matched,
                           confirmed=confirm)  # fmt: skip
    while chunk := list(islice(ids, CHUNK)):
        with buckets.batch():
            for id in chunk:
                try:
                    one(id)
                    reply.done += 1
                except WorkflowError as exc:  # changed in between: say so, go on
                    reply.skipped += 1
                    if len(reply.reasons) < LISTED:
                        reply.reasons.append({"id": id, "reason": exc.message})
    return reply
