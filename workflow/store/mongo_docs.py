"""Pipeline runs, configurations and schedules in MongoDB: a collection per kind
(``pipeline_runs``, ...), ``_id`` the document's id (``workflow.store.base.Documents``).
A put is one compare-and-set on ``version`` (an insert, for the first, which a
duplicate key refuses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from workflow.store.base import Doc
from workflow.store.mongo import guarded

if TYPE_CHECKING:
    from workflow.store.mongo import MongoStore


class MongoDocuments:
    def __init__(self, store: MongoStore):
        self._store = store

    def _raw(self, kind: str) -> Any:
        return self._store.db[kind]

    @guarded
    def get(self, kind: str, id: str) -> Doc | None:
        return self._raw(kind).find_one({"_id": id}, {"_id": 0})  # type: ignore[no-any-return]

    @guarded
    def find(self, kind: str, *, status: list[str] | None = None, name: str | None = None,
             limit: int | None = None) -> list[Doc]:  # fmt: skip
        query: Doc = {}
        if status:
            query["status"] = {"$in": status}
        if name is not None:
            query["name"] = name
        found = self._raw(kind).find(query, {"_id": 0}).sort([("creation", -1), ("id", -1)])
        return list(found.limit(limit) if limit is not None else found)

    @guarded
    def put(self, kind: str, doc: Doc, expect: int | None) -> bool:
        if expect is None:
            try:
                self._raw(kind).insert_one({"_id": doc["id"], **doc})
            except DuplicateKeyError:
                return False
            return True
        done = self._raw(kind).replace_one({"_id": doc["id"], "version": expect},
                                           {"_id": doc["id"], **doc})  # fmt: skip
        return bool(done.matched_count)

    @guarded
    def delete(self, kind: str, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(self._raw(kind).delete_many({"_id": {"$in": ids}}).deleted_count)
