"""One collection of the MongoDB store, the bucket (``work``) or the results, and the
guard every MongoDB call goes through (``workflow.store.mongo``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo.errors import DuplicateKeyError, PyMongoError

from workflow.errors import DuplicateWork, NotFound, StoreUnavailable, TransitionConflict
from workflow.store.base import Doc, Query, Sort
from workflow.store.text import text_filter, words

if TYPE_CHECKING:
    from workflow.store.mongo import MongoStore

F = TypeVar("F", bound=Callable[..., Any])
#: Never returned to callers.
HIDDEN = {"_id": 0, "_words": 0, "_moving": 0}


def guarded(method: F) -> F:
    """Turn a driver error into ``StoreUnavailable``, naming the operation."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        store = getattr(self, "_store", self)
        try:
            store.prepare()
            return method(self, *args, **kwargs)
        except (DuplicateKeyError, TransitionConflict, NotFound, DuplicateWork):
            raise
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB is unavailable ({method.__name__}): {exc}") from exc

    return call  # type: ignore[return-value]


def joined(*parts: Query) -> Query:
    """The filter matching all of ``parts``."""
    present = [p for p in parts if p]
    if not present:
        return {}
    return present[0] if len(present) == 1 else {"$and": present}


class MongoCollection:
    """The bucket or the results (see ``workflow.store.base.Collection``)."""

    def __init__(self, store: MongoStore, name: str):
        self._store = store
        self.name = name
        self.raw = store.db[name]

    def stored(self, doc: Doc) -> Doc:
        """The document as kept: ``_id``, and the words of a result."""
        out = {**doc, "_id": doc["id"]}
        if self.name == "results":
            out["_words"] = words(doc)
        return out

    @guarded
    def insert(self, docs: list[Doc]) -> list[Doc | None]:
        ids = [doc["id"] for doc in docs]
        found = {d["id"]: d for d in self.raw.find({"_id": {"$in": ids}}, HIDDEN)}
        out: list[Doc | None] = []
        for doc in docs:
            if doc["id"] in found:
                out.append(found[doc["id"]])
                continue
            try:
                self.raw.insert_one(self.stored(doc))
            except DuplicateKeyError:
                out.append(self.get(doc["id"]))
                continue
            if self.name == "results":
                self._store.count_minute(doc)
            found[doc["id"]] = doc
            out.append(None)
        return out

    @guarded
    def get(self, id: str) -> Doc | None:
        return self.raw.find_one({"_id": id}, HIDDEN)  # type: ignore[no-any-return]

    def _filter(self, query: Query, text: str | None) -> Query:
        visible = {"_moving": {"$exists": False}} if self.name == "work" else {}
        return joined(query, text_filter(text) if self.name == "results" else {}, visible)

    @guarded
    def find(self, query: Query, *, sort: Sort | None = None, skip: int = 0,
             limit: int | None = None, text: str | None = None) -> list[Doc]:  # fmt: skip
        order = list(sort or [])
        if not any(field == "id" for field, _ in order):
            order.append(("id", -1 if order and order[-1][1] < 0 else 1))
        cursor = self.raw.find(self._filter(query, text), HIDDEN)
        cursor = cursor.sort(order).skip(skip)
        if limit is not None:
            if limit == 0:
                return []
            cursor = cursor.limit(limit)
        return list(cursor)

    @guarded
    def count(self, query: Query, *, text: str | None = None) -> int:
        return int(self.raw.count_documents(self._filter(query, text)))

    @guarded
    def swap(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
             ) -> Doc:  # fmt: skip
        def replace(session: Any) -> bool:
            done = self.raw.replace_one({"_id": id, **expect}, self.stored(doc),
                                        session=session)  # fmt: skip
            if not done.matched_count:
                raise self._store.conflict(self, id, expect, session)
            return True

        self._store.outbox.written_with(replace, notes, doc)
        return doc

    @guarded
    def append(self, id: str, entries: list[Doc]) -> bool:
        # Not a work being moved: its copy in the results may be written already.
        where = self._filter({"_id": id}, None)
        done = self.raw.update_one(where, {"$push": {"history": {"$each": entries}}})
        return bool(done.matched_count)

    @guarded
    def delete(self, ids: list[str]) -> int:
        # Not a work being moved: it left the bucket (its move finishes it, a delete
        # would only make the count say that a work now in the results was deleted).
        where = self._filter({"_id": {"$in": list(ids)}}, None)
        return int(self.raw.delete_many(where).deleted_count)

    @guarded
    def tally(self) -> list[tuple[str, str, int]]:
        rows = self.raw.aggregate([
            {"$match": self._filter({}, None)},
            {"$group": {"_id": {"p": "$pipeline", "s": "$status"}, "n": {"$sum": 1}}},
        ])  # fmt: skip
        return sorted((str(r["_id"]["p"]), str(r["_id"]["s"]), int(r["n"])) for r in rows)
