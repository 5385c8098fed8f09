"""The bucket verbs that read: one work, a page of works, counts, pipelines; and delete.

``Buckets`` has these as its own (``class Buckets(..., ReadingVerbs)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workflow.errors import NotFound, TransitionConflict
from workflow.store.base import Doc, Query, Store
from workflow.wire import PipelineSettings, parse_settings


class ReadingVerbs:
    """What anyone with a viewer's token may ask of the buckets."""

    store: Store

    def get_active(self, id: str) -> Doc:
        """The work ``id`` from the bucket.

        Raises:
            NotFound: it is not in the bucket (it may have finished).
        """
        doc = self.store.work.get(id)
        if doc is None:
            raise NotFound(f"no work {id} in the bucket", field="id", id=id)
        return doc

    def get(self, id: str) -> Doc:
        """The work ``id`` from the bucket or, once finished, from the results."""
        doc = self.store.work.get(id) or self.store.results.get(id)
        if doc is None:
            raise NotFound(f"no work {id}", field="id", id=id)
        return doc

    def works(self, pipelines: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, *, skip: int = 0, limit: int = 100
              ) -> list[Doc]:  # fmt: skip
        """Works in the buckets of ``pipelines`` (None: all) with one of ``statuses``
        (None: queued or running), newest first."""
        query: dict[str, Any] = {}
        for name, values in (("pipeline", pipelines), ("status", statuses)):
            if values:
                query[name] = {"$in": list(values)}
        return self.store.work.find(query, sort=[("creation", -1)], skip=skip, limit=limit)

    def view(self, query: Query, *, skip: int = 0, limit: int | None = None) -> list[Doc]:
        """Works matching a (checked) Mongo-style query, newest first."""
        return self.store.work.find(query, sort=[("creation", -1)], skip=skip, limit=limit)

    def count(self, query: Query) -> int:
        """How many works in the buckets match a (checked) Mongo-style query."""
        return self.store.work.count(query)

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per pipeline and status, over the bucket and the results."""
        out: dict[str, dict[str, int]] = {}
        for collection in (self.store.work, self.store.results):
            for pipeline, status, n in collection.tally():
                out.setdefault(pipeline, {})[status] = n
        return out

    def recorded(self, id: str, attempt: int, status: str) -> Doc:
        """The work, if its history already holds this completion of this attempt.

        Raises:
            NotFound: no such work anywhere.
            TransitionConflict: the work moved on without this completion (stale).
        """
        doc = self.get(id)
        ended = [e for e in doc.get("history", []) if e.get("attempt") == attempt
                 and e.get("kind", "attempt") == "attempt"]
        if any(entry.get("outcome") == status for entry in ended):
            return doc
        if ended:
            raise TransitionConflict(
                f"attempt {attempt} of work {id} already ended as {ended[-1].get('outcome')}; "
                f"it cannot also end as {status} (the work is {doc['status']})",
                field="status", id=id, status=doc["status"], attempt=doc["attempt"],
            )  # fmt: skip
        raise TransitionConflict(
            f"work {id} is {doc['status']} at attempt {doc['attempt']}; "
            f"attempt {attempt} is stale",
            field="attempt", id=id, status=doc["status"], attempt=doc["attempt"],
        )  # fmt: skip

    def settings(self, pipeline: str) -> PipelineSettings:
        """The settings of ``pipeline`` (defaults apply when none were set)."""
        return parse_settings(self.store.settings().get(pipeline))

    def pipelines(self) -> list[Doc]:
        """Every pipeline that holds work or has settings: its name, its counts and its
        settings."""
        counts = self.counts()
        names = sorted(set(counts) | set(self.store.settings()))
        return [{"name": name, "counts": counts.get(name, {}),
                 **self.settings(name).model_dump()} for name in names]  # fmt: skip

    def oldest_queued(self, pipeline: str) -> float | None:
        """When the oldest queued work of ``pipeline`` was created; None if none is."""
        # One index seek per priority: the claim index orders queued works by pipeline,
        # priority and creation.
        oldest = None
        for priority in range(1, 6):
            query = {"pipeline": pipeline, "status": "queued", "priority": priority}
            for doc in self.store.work.find(query, sort=[("creation", 1)], limit=1):
                created = float(doc["creation"])
                oldest = created if oldest is None else min(oldest, created)
        return oldest

    def finished_per_minute(self, since: float) -> list[tuple[int, str, str, int]]:
        """Works finished per minute since ``since``: (minute, pipeline, status, count)."""
        return self.store.finished_per_minute(since)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete works from the bucket, with their logs; return how many existed."""
        self.store.logs.forget(list(ids))
        return self.store.work.delete(list(ids))
