"""The messages to deliver in MongoDB: the ``outbox`` collection, ``_id`` the message's
key, in the order of ``created`` (``workflow.store.base.Outbox``).

A message goes in with the state change that causes it (``written_with``). On a replica
set both are one transaction. Elsewhere MongoDB has no transaction across documents,
so the messages go in first, each marked with ``_check``: where to look, and what to
find there, once the change is made (the history entry it appended, or the version of
the document it wrote). The mark is taken off as soon as the change is made. A marked
message is never delivered: it holds up its target until the change is made or, after
``GRACE`` seconds, ``_settle`` looks: made, the mark goes; not made and never to be (the
work's history has another entry in that place: the change lost its compare-and-set,
or the server died and the work moved on without it), the message goes. A work always
moves on (a lost lease is recorded), so a mark never holds a target for good; a
document's change not made within the grace is taken as never made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from workflow.store.base import Doc
from workflow.store.mongo_collection import guarded

if TYPE_CHECKING:
    from workflow.store.mongo import MongoStore

#: Seconds a marked message waits for the change that causes it before it is looked into.
GRACE = 30.0
_SHOWN = {"_id": 0, "_check": 0}
#: Oldest first: the order the messages were written in.
_ORDER = [("created", 1), ("_id", 1)]


class MongoOutbox:
    def __init__(self, store: MongoStore):
        self._store = store
        self.raw = store.db["outbox"]

    def indexes(self) -> None:
        self.raw.create_index([("state", 1), ("target", 1), ("created", 1)], name="heads")
        self.raw.create_index([("work", 1), ("created", -1)], name="by_work", sparse=True)
        self.raw.create_index([("_check.since", 1)], name="unconfirmed", sparse=True)

    def written_with(self, write: Callable[[Any], bool | None], notes: Sequence[Doc],
                     doc: Doc, kind: str | None = None, transact: bool = False
                     ) -> bool | None:  # fmt: skip
        """Run ``write`` (a compare-and-set of ``doc``, in the collection ``kind`` for
        a document, else a work; it raises or returns False when it does not match),
        passing it the session of its transaction or None, and put ``notes`` in the
        outbox with it; return what ``write`` returned. ``transact``: in a transaction
        even without notes."""
        store = self._store
        if store.transactions and (notes or transact):
            said: list[bool | None] = []

            def both(session: Any) -> None:
                said[:] = [write(session)]  # (run again whole if the server aborts it)
                if said[0] is not False:
                    self._insert(notes, session)

            store.transacted(both)
            return said[0]
        if not notes:
            return write(None)
        check = {**_check(doc, kind), "since": time.time()}
        self._insert([{**note, "_check": check} for note in notes])
        said_now = write(None)
        if said_now is not False:
            keys = [note["key"] for note in notes]
            self.raw.update_many({"_id": {"$in": keys}}, {"$unset": {"_check": ""}})
        return said_now

    def _insert(self, notes: Sequence[Doc], session: Any = None) -> int:
        """Write each note whose key is new (an upsert: inside a transaction a duplicate
        key would abort it); return how many were."""
        new = 0
        for note in notes:
            done = self.raw.update_one({"_id": note["key"]}, {"$setOnInsert": note},
                                       upsert=True, session=session)  # fmt: skip
            new += done.upserted_id is not None
        return new

    @guarded
    def add(self, notes: Sequence[Doc]) -> int:
        return self._insert(notes)

    @guarded
    def get(self, key: str) -> Doc | None:
        return self.raw.find_one({"_id": key}, _SHOWN)  # type: ignore[no-any-return]

    @guarded
    def heads(self, target: str | None = None) -> list[Doc]:
        self._settle(time.time())
        waiting: Doc = {"state": {"$in": ["pending", "sending"]}}
        if target is not None:
            found = self.raw.find({**waiting, "target": target}, {"_id": 0})
            return [doc for doc in found.sort(_ORDER).limit(1) if "_check" not in doc]
        rows = self.raw.aggregate([
            {"$match": waiting},
            {"$sort": {"created": 1, "_id": 1}},
            {"$group": {"_id": "$target", "doc": {"$first": "$$ROOT"}}},
        ])  # fmt: skip
        heads = [row["doc"] for row in rows if "_check" not in row["doc"]]
        return [{k: v for k, v in doc.items() if k != "_id"}
                for doc in sorted(heads, key=lambda d: (d["created"], d["_id"]))]  # fmt: skip

    def _settle(self, now: float) -> None:
        """Look into the marked messages older than ``GRACE`` (see the module)."""
        for doc in self.raw.find({"_check.since": {"$lt": now - GRACE}}):
            made = self._made(doc["_check"])
            if made:
                self.raw.update_one({"_id": doc["_id"]}, {"$unset": {"_check": ""}})
            elif made is False:
                self.raw.delete_one({"_id": doc["_id"], "_check": {"$exists": True}})

    def _made(self, check: Doc) -> bool | None:
        """Whether the change ``check`` describes was made: True; False when it never
        will be; None when it still may be (a work's history has not reached its entry's
        place yet: a change of the work, by this write or another, will fill it)."""
        found = [d for name in check["in"]
                 if (d := self._store.db[name].find_one({"_id": check["id"]}))]  # fmt: skip
        if not found:
            return False  # (deleted; or the first write of a document never came)
        if "version" in check:
            return int(found[0].get("version") or 0) >= check["version"]
        history = found[0].get("history") or []
        if len(history) <= check["slot"]:
            return None
        there = history[check["slot"]]
        return all(there.get(name) == value for name, value in check["entry"].items())

    @guarded
    def recording(self, now: float, limit: int = 100) -> list[Doc]:
        found = self.raw.find({"state": "recording", "due": {"$lte": now}}, _SHOWN)
        return list(found.sort(_ORDER).limit(limit))

    @guarded
    def put(self, doc: Doc, expect: int) -> bool:
        done = self.raw.replace_one({"_id": doc["key"], "version": expect,
                                     "_check": {"$exists": False}},
                                    {"_id": doc["key"], **doc})  # fmt: skip
        return bool(done.matched_count)

    @guarded
    def find(self, *, work: str | None = None, states: list[str] | None = None,
             target: str | None = None, limit: int = 100) -> list[Doc]:  # fmt: skip
        query: Doc = {}
        if work is not None:
            query["work"] = work
        if target is not None:
            query["target"] = target
        if states:
            query["state"] = {"$in": states}
        found = self.raw.find(query, _SHOWN).sort([("created", -1), ("_id", -1)])
        return list(found.limit(limit))

    @guarded
    def prune(self, before: float) -> int:
        done = self.raw.delete_many({"state": "done", "created": {"$lt": before}})
        return int(done.deleted_count)


def _check(doc: Doc, kind: str | None) -> Doc:
    """Where to look, and what to find, once ``doc`` is written: a document at its
    version or later, or a work (in the bucket or, moved on since, in the results) whose
    history holds ``doc``'s last entry at its place."""
    if kind is not None:
        return {"in": [kind], "id": doc["id"], "version": doc["version"]}
    history = doc.get("history") or [{}]
    entry = {name: history[-1].get(name) for name in ("kind", "attempt", "outcome", "stopped")}
    return {"in": ["work", "results"], "id": doc["id"], "slot": len(history) - 1, "entry": entry}
