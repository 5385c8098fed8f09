"""The results verbs: finished works with their history, searchable.

Works arrive here from the bucket (``Store.finish``); CHIME's transfer daemon may also
post finished works directly (``deposit``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workflow.errors import DuplicateWork, InvalidWork, NotFound
from workflow.history import ActionEntry
from workflow.store.base import Doc, Query, Store
from workflow.wire import BulkReply, Search
from workflow.work import (
    RESULTS_LIMIT,
    TERMINAL,
    check_results_size,
    parse_work,
)

#: Threads that count a search's matches while its page is read (see ``search``).
_COUNTING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workflow-count")


class Results:
    """Finished works over a ``Store``."""

    def __init__(self, store: Store, *, results_limit: int = RESULTS_LIMIT):
        self.store = store
        self.results_limit = results_limit

    def search(self, search: Search) -> tuple[list[Doc], int]:
        """One page of matching works, and how many match in all."""
        sort = search.order_by()
        query = search.query()
        if not (query or search.text) or not self.store.concurrent_reads:
            items = self.store.results.find(query, sort=sort, skip=search.skip,
                                            limit=search.limit, text=search.text)  # fmt: skip
            return items, self.store.results.count(query, text=search.text)
        # A filtered count may take as long as the page: run them side by side.
        total = _COUNTING.submit(self.store.results.count, query, text=search.text)
        try:
            items = self.store.results.find(query, sort=sort, skip=search.skip,
                                            limit=search.limit, text=search.text)  # fmt: skip
        except BaseException:
            total.cancel()
            raise
        return items, total.result()

    def total(self, search: Search) -> int:
        """How many works match ``search``."""
        return self.store.results.count(search.query(), text=search.text)

    def export(self, search: Search, chunk: int = 1000) -> Iterator[Doc]:
        """Every work matching ``search`` (its page and sort aside), newest first, read
        a chunk at a time after the last one seen (so a million cost no more per chunk
        than the first)."""
        query = search.query()
        after: tuple[float, str] | None = None
        while True:
            page = query
            if after is not None:
                created, id = after
                cursor = {"$or": [{"creation": {"$lt": created}},
                                  {"creation": created, "id": {"$lt": id}}]}  # fmt: skip
                page = {"$and": [query, cursor]} if query else cursor
            docs = self.store.results.find(page, sort=[("creation", -1)], limit=chunk,
                                           text=search.text)  # fmt: skip
            yield from docs
            if len(docs) < chunk:
                return
            after = (float(docs[-1]["creation"]), str(docs[-1]["id"]))

    def view(self, query: Query, *, skip: int = 0, limit: int | None = None) -> list[Doc]:
        """Works matching a (checked) Mongo-style query, newest first."""
        return self.store.results.find(query, sort=[("creation", -1)], skip=skip, limit=limit)

    def count(self, query: Query) -> int:
        """How many works match a (checked) Mongo-style query."""
        return self.store.results.count(query)

    def result(self, id: str) -> Doc:
        """The finished work ``id``.

        Raises:
            NotFound: no finished work has that id.
        """
        doc = self.store.results.get(id)
        if doc is None:
            raise NotFound(f"no finished work {id}", field="id", id=id)
        return doc

    def retry_matching(self, search: Search, confirm: int | None = None, *,
                       from_failure: bool = False, by: str | None = None) -> BulkReply:  # fmt: skip
        """Queue again every finished work ``search`` matches (its sort and page aside),
        each as a new work linked to it, with its own parameters (graph works
        ``from_failure`` if asked: ``Buckets.retry``); nothing is done without
        ``confirm``, or if more than ``confirm`` works match (see
        ``workflow.buckets.bulk``)."""
        from workflow.buckets import Buckets
        from workflow.buckets.bulk import retry_results

        buckets = Buckets(self.store, results_limit=self.results_limit)
        return retry_results(buckets, self.export(search), self.total(search),
                             confirm=confirm, by=by, from_failure=from_failure)  # fmt: skip

    def tally(self) -> dict[str, int]:
        """How many finished works each pipeline has."""
        out: dict[str, int] = {}
        for pipeline, _status, n in self.store.results.tally():
            out[pipeline] = out.get(pipeline, 0) + n
        return out

    def deposit(self, works: list[dict[str, Any]], user: str | None = None) -> dict[str, int]:
        """Store finished works as they are (CHIME's transfer daemon posts them); a work
        that names no ``user`` is recorded under ``user``, else ``unknown``.

        Raises:
            InvalidWork: a work is invalid or not finished; nothing is stored.
            DuplicateWork: an id is already in the results; nothing is stored.
            ResultsTooLarge: a work's results are over the limit; nothing is stored.
        """
        docs = [self._finished(raw if not isinstance(raw, dict) or "user" in raw
                               else {**raw, "user": user or "unknown"}, f"works[{i}]")
                for i, raw in enumerate(_listed(works))]  # fmt: skip
        clashes = self.store.results.find({"id": {"$in": [d["id"] for d in docs]}})
        if clashes:
            raise DuplicateWork(f"already in the results: {clashes[0]['id']}", field="id")
        taken = self.store.results.insert(docs)
        out: dict[str, int] = {}
        for doc, clash in zip(docs, taken, strict=True):
            if clash is None:
                out[doc["pipeline"]] = out.get(doc["pipeline"], 0) + 1
        return out

    def update(self, works: list[dict[str, Any]], by: str | None = None) -> dict[str, int]:
        """Replace the fields sent of finished works by id (CHIME ``PUT /results``); each
        change goes into the work's history under ``by``. Every work is checked before
        any is changed.

        Raises:
            InvalidWork, ResultsTooLarge: a work is invalid; nothing changes.
            NotFound: no such finished work; nothing changes.
        """
        planned = []
        for i, raw in enumerate(_listed(works)):
            doc = self._finished(raw, f"works[{i}]")
            stored = self.result(doc["id"])
            changes = {k: doc[k] for k in raw if k in doc and k != "history"
                       and doc[k] != stored.get(k)}  # fmt: skip
            entry = ActionEntry(action="edit", at=time.time(), by=by,
                                changes={k: v for k, v in changes.items() if k != "results"})
            history = [*stored.get("history", []), entry.model_dump(mode="json")]
            planned.append((stored, {**stored, **changes, "history": history}))
        out: dict[str, int] = {}
        with self.store.batch():
            for stored, merged in planned:
                self.store.results.swap(stored["id"], {"status": stored["status"]}, merged)
                out[merged["pipeline"]] = out.get(merged["pipeline"], 0) + 1
        return out

    def delete(self, ids: list[str]) -> int:
        """Delete finished works, with their logs; return how many existed."""
        self.store.logs.forget(ids)
        return self.store.results.delete(ids)

    def _finished(self, raw: Any, where: str) -> Doc:
        if not isinstance(raw, dict):
            raise InvalidWork(f"{where}: a work is a JSON object", field=where)
        doc = parse_work(raw, where).payload()
        check_results_size(doc.get("results"), self.results_limit)
        if doc["status"] not in TERMINAL:
            raise InvalidWork(f"{where}.status: only finished works go to the results",
                              field=f"{where}.status")  # fmt: skip
        if not doc.get("id"):
            raise InvalidWork(f"{where}.id: a finished work has an id", field=f"{where}.id")
        return doc


def _listed(works: Any) -> list[Any]:
    if not isinstance(works, list):
        raise InvalidWork("send a JSON array of works", field="works")
    return works
