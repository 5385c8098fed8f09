"""An in-process client: the same calls as ``workflow.client.Client``, straight on a store.

For embedding, benchmarks, and running the conformance suite without HTTP.
"""

from __future__ import annotations

from typing import Any

from workflow.buckets import Buckets, PipelineSettings
from workflow.buckets.bulk import act_on_bucket, retry_results
from workflow.buckets.verbs import plain_query
from workflow.client import deposit_payloads, outcome_items, split_pipelines
from workflow.results import Results, Search
from workflow.store import Store, open_store
from workflow.work import Work, default_user


class LocalClient:
    """``Client``'s methods over ``Buckets`` and ``Results`` on ``store``."""

    def __init__(self, store: Store | str | None = None, **buckets_options: Any):
        self.store = open_store(store) if store is None or isinstance(store, str) else store
        self.buckets = Buckets(self.store, **buckets_options)
        self.results = Results(self.store)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def deposit(self, works: list[Work]) -> list[str]:
        ids = self.buckets.deposit(deposit_payloads(works))
        for work in works:
            work.status = "queued"
        return ids

    def withdraw(self, pipelines: str | list[str] | None = None, *, limit: int = 1,
                 lease: float | None = None, runner: str | None = None,
                 host: str | None = None, **filters: Any) -> list[Work]:  # fmt: skip
        docs = self.buckets.withdraw(split_pipelines(pipelines), query=plain_query(**filters),
                                     limit=limit, lease=lease, runner=runner,
                                     host=host)  # fmt: skip
        return [Work.model_validate(doc) for doc in docs]

    def exchange(self, outcomes: list[dict[str, Any]], pipelines: str | list[str] | None = None,
                 *, limit: int = 1, lease: float | None = None, runner: str | None = None,
                 host: str | None = None, **filters: Any
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
        return self.buckets.exchange(outcome_items(outcomes), split_pipelines(pipelines),
                                     query=plain_query(**filters), limit=limit, lease=lease,
                                     runner=runner, host=host)  # fmt: skip

    def heartbeat(self, id: str, attempt: int, lease: float | None = None) -> Work:
        return Work.model_validate(self.buckets.heartbeat(id, attempt, lease))

    def heartbeat_many(self, works: list[dict[str, Any]], lease: float | None = None
                       ) -> list[dict[str, Any]]:  # fmt: skip
        return self.buckets.heartbeat_many(
            [{"id": w["id"], "attempt": w["attempt"]} for w in works], lease)

    def complete(self, id: str, attempt: int, status: str, **outcome: Any) -> Work:
        return Work.model_validate(self.buckets.complete(id, attempt, status, **outcome))

    def release(self, id: str, attempt: int, reason: str = "released") -> Work:
        return Work.model_validate(self.buckets.release(id, attempt, reason))

    def update(self, work: Work) -> Work:
        from workflow.buckets import chime

        chime.update_all(self.buckets, [work.payload()], by=default_user())
        assert work.id is not None
        return self.get(work.id)

    def cancel(self, id: str) -> Work:
        return Work.model_validate(self.buckets.cancel(id, by=default_user()))

    def retry(self, id: str, parameters: dict[str, Any] | None = None) -> Work:
        return Work.model_validate(self.buckets.retry(id, parameters, by=default_user()))

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None
               ) -> Work:  # fmt: skip
        changed = self.buckets.change(id, priority=priority, retries=retries, by=default_user())
        return Work.model_validate(changed)

    def delete(self, ids: list[str]) -> int:
        return self.buckets.delete(ids)

    def get(self, id: str) -> Work:
        return Work.model_validate(self.buckets.get(id))

    def counts(self) -> dict[str, dict[str, int]]:
        return self.buckets.counts()

    def bulk(self, action: str, *, confirm: int | None = None, priority: int | None = None,
             retries: int | None = None, **filter: Any) -> dict[str, Any]:  # fmt: skip
        lists = {k: filter.pop(k) for k in ("pipeline", "status") if filter.get(k)}
        query = plain_query(**filter)
        query.update({k: {"$in": list(v)} for k, v in lists.items()})
        return act_on_bucket(self.buckets, query, action, confirm=confirm,  # type: ignore[arg-type]
                             by=default_user(), priority=priority, retries=retries)  # fmt: skip

    def retry_matching(self, *, confirm: int | None = None, **search: Any) -> dict[str, Any]:
        found = _search(search)
        return retry_results(self.buckets, self.results.export(found), self.results.total(found),
                             confirm=confirm, by=default_user())  # fmt: skip

    def configure(self, pipeline: str, changes: dict[str, Any]) -> PipelineSettings:
        return self.buckets.configure(pipeline, changes, by=default_user())

    def expire(self) -> int:
        return self.buckets.expire(limit=10_000)

    def search(self, **params: Any) -> tuple[list[Work], int]:
        items, total = self.results.search(_search(params))
        return [Work.model_validate(doc) for doc in items], total

    def result(self, id: str) -> Work:
        return Work.model_validate(self.results.get(id))


def _search(params: dict[str, Any]) -> Search:
    """A ``Search`` from the HTTP search's parameter names."""
    renames = {"tag": "tags"}
    return Search(**{renames.get(k, k): v for k, v in params.items() if v is not None})
