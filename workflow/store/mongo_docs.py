"""Pipeline runs, configurations and schedules in MongoDB: a collection per kind
(``pipeline_runs``, ...), ``_id`` the document's id (``workflow.store.base.Documents``).
A put is one compare-and-set on ``version`` (an insert, for the first, of a key not
yet taken), with the messages it causes (``workflow.store.mongo_outbox``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workflow.store.base import Doc
from workflow.store.mongo_collection import guarded

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
    def put(self, kind: str, doc: Doc, expect: int | None, notes: Sequence[Doc] = ()
            ) -> bool:  # fmt: skip
        stored = {"_id": doc["id"], **doc}

        def write(session: Any) -> bool:
            if expect is None:  # an upsert: a duplicate key would abort a transaction
                done = self._raw(kind).update_one({"_id": doc["id"]}, {"$setOnInsert": stored},
                                                  upsert=True, session=session)  # fmt: skip
                return done.upserted_id is not None
            done = self._raw(kind).replace_one({"_id": doc["id"], "version": expect}, stored,
                                               session=session)  # fmt: skip
            return bool(done.matched_count)

        return bool(self._store.outbox.written_with(write, notes, doc, kind))

    @guarded
    def delete(self, kind: str, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(self._raw(kind).delete_many({"_id": {"$in": ids}}).deleted_count)
