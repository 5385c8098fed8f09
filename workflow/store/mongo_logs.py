"""The attempts' logs in MongoDB: one document per attempt, ``_id`` ``WORK/ATTEMPT``, in
the ``logs`` collection (``workflow.store.base.LogBook``). A put is one compare-and-set
on the stored size (an insert, for the first, which a duplicate key refuses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from workflow.store.base import Doc
from workflow.store.mongo_collection import guarded

if TYPE_CHECKING:
    from workflow.store.mongo import MongoStore


class MongoLogs:
    """The ``logs`` collection, indexed by work."""

    def __init__(self, store: MongoStore):
        self._store = store
        self.raw: Any = store.db["logs"]

    @guarded
    def get(self, work: str, attempt: int) -> Doc | None:
        return self.raw.find_one({"_id": f"{work}/{attempt}"}, {"_id": 0})  # type: ignore[no-any-return]

    @guarded
    def attempts(self, work: str) -> list[Doc]:
        return list(self.raw.find({"work": work}, {"_id": 0, "text": 0}).sort("attempt", 1))

    @guarded
    def put(self, doc: Doc, expect: int | None) -> bool:
        key = f"{doc['work']}/{doc['attempt']}"
        if expect is None:
            try:
                self.raw.insert_one({"_id": key, **doc})
            except DuplicateKeyError:
                return False
            return True
        found = self.raw.replace_one({"_id": key, "size": expect}, {"_id": key, **doc})
        return bool(found.matched_count)

    @guarded
    def forget(self, works: list[str]) -> int:
        if not works:
            return 0
        return int(self.raw.delete_many({"work": {"$in": works}}).deleted_count)
