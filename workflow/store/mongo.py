"""The MongoDB ``Store`` (``mongodb://HOST/DATABASE``), through pymongo's own API.

Each work is one document with ``_id`` = its id, in the ``work`` (bucket) or ``results``
collection; ``pipelines`` holds settings, ``minutes`` the finished-per-minute counts and
``runners`` the runners on record, ``logs`` the attempts' logs
(``workflow.store.mongo_logs``), ``outbox`` the messages to deliver
(``workflow.store.mongo_outbox``); the bucket and the results are
``workflow.store.mongo_collection``.
Indexes for the withdraw order and every results filter are created on open.

Every state change is a compare-and-set: the filter names the id and the expected
status and attempt. A claim takes the first queued candidates in withdraw order, each
by its own compare-and-set, so two servers never hand out the same work.

Moving a finished work to the results is three steps that a crash can interrupt
anywhere without losing or duplicating it. 1) A compare-and-set replaces the bucket
document with the final one, marked ``_moving``; from then on nobody else can change
it. 2) The final document is upserted into the results, which is idempotent. 3) The
bucket document is deleted. ``tidy`` (on open, and every reap interval) finishes any
move that a crash left at ``_moving``. On a replica set the three steps also run in one
transaction, so no reader ever sees the work in both places.

One store serves many threads at once, so it keeps no session: a transaction's session
is passed explicitly down every call of the finish that opened it, and every other call
runs outside any transaction. Only a finish opens one (``batch`` does not, see there).

Other servers' changes are followed through a change stream where the deployment has
them (``follow``, ``workflow.store.mongo_changes``).

Free text is matched against ``_words``, each result's words in lower case, as prefixes,
like SQLite's full-text index. Driver errors become ``StoreUnavailable`` (HTTP 503). The
client reconnects by itself, so the service recovers when the database is back.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from workflow.errors import (
    ConfigurationError,
    DuplicateWork,
    NotFound,
    StoreUnavailable,
    TransitionConflict,
)
from workflow.store.base import Claim, Doc, Query, claimed

try:
    import pymongo
    from pymongo import ReturnDocument
    from pymongo.errors import OperationFailure, PyMongoError

    from workflow.store import mongo_changes
    from workflow.store.mongo_collection import HIDDEN, MongoCollection, guarded, joined
except ImportError as exc:  # pragma: no cover - exercised by the message only
    raise ConfigurationError("MongoDB stores need pymongo: pip install 'workflow[mongo]'",
                             field="store") from exc  # fmt: skip

#: The fields a claim writes (see ``workflow.store.base.claimed``); it leaves the others.
CLAIMED = ("status", "start", "stop", "attempt", "not_before", "lease")
#: Seconds pymongo waits for a server before a call fails (and the service answers 503).
SERVER_WAIT_MS = 5000


class MongoStore:
    """The MongoDB ``Store`` (see the module docstring).

    Args:
        url: ``mongodb://HOST[:PORT]/DATABASE?...`` (database ``workflow`` if none).
        client: A client to use instead of connecting (tests pass ``mongomock``'s).
    """

    concurrent_reads = False  # the server answers in parallel anyway; mongomock cannot
    shared = True  # any number of servers may use one database

    def __init__(self, url: str, client: Any = None):
        self.url = url
        parsed = pymongo.uri_parser.parse_uri(url) if client is None else {"database": None}
        name = parsed.get("database") or url.rsplit("/", 1)[-1].split("?")[0] or "workflow"
        options: dict[str, Any] = {} if "serverselectiontimeoutms" in url.lower() else {
            "serverSelectionTimeoutMS": SERVER_WAIT_MS}
        self.client = client or pymongo.MongoClient(url, tz_aware=False, **options)
        self.db = self.client[name]
        self._work = MongoCollection(self, "work")
        self._results = MongoCollection(self, "results")
        from workflow.store.mongo_docs import MongoDocuments  # they import this module
        from workflow.store.mongo_logs import MongoLogs
        from workflow.store.mongo_outbox import MongoOutbox

        self.logs = MongoLogs(self)
        self.documents = MongoDocuments(self)
        self.outbox = MongoOutbox(self)
        self._mock = client is not None
        self.transactions = False
        self._prepared = False
        self._preparing = threading.Lock()

    def prepare(self) -> None:
        """On first use (and after failures, until it worked once): learn whether the
        server is a replica set, create the indexes and finish interrupted moves. The
        server need not be up when the store opens; calls fail with 503 until it is.

        Calls of other threads wait meanwhile: before it is done they would not know
        whether to use transactions, and could miss a work whose move is yet to finish.
        """
        if self._prepared:
            return
        with self._preparing:
            if self._prepared:  # another thread did it while this one waited
                return
            self.transactions = not self._mock and "setName" in self.client.admin.command("hello")
            self._indexes()
            self._tidy()
            self._prepared = True  # last: the fast path above skips the lock

    @property
    def work(self) -> MongoCollection:
        return self._work

    @property
    def results(self) -> MongoCollection:
        return self._results

    def _indexes(self) -> None:
        work, results = self.db["work"], self.db["results"]
        work.create_index([("status", 1), ("pipeline", 1), ("priority", -1), ("creation", 1),
                           ("id", 1)], name="withdraw_order")  # fmt: skip
        work.create_index([("status", 1), ("lease.expires", 1)], name="lease_expiry")
        work.create_index([("pipeline", 1), ("status", 1)], name="tally")
        work.create_index([("creation", -1), ("id", -1)], name="newest")
        # The repair sweep (every reap interval) looks only at works being moved.
        work.create_index([("_moving", 1)], name="moving", sparse=True)
        results.create_index([("creation", -1), ("id", -1)], name="newest")
        results.create_index([("pipeline", 1), ("status", 1)], name="tally")
        for field in ("pipeline", "status", "tags", "event", "site", "user", "_words"):
            results.create_index([(field, 1), ("creation", -1), ("id", -1)], name=f"by_{field}")
        for field in ("stop", "start", "priority", "attempt"):
            results.create_index([(field, -1), ("id", -1)], name=f"sort_{field}")
        self.db["minutes"].create_index([("minute", 1)], name="minute")
        work.create_index([("lease.runner", 1)], name="held_by", sparse=True)
        self.db["runners"].create_index([("last_seen", 1)], name="last_seen")
        self.db["logs"].create_index([("work", 1), ("attempt", 1)], name="by_work")
        for kind in ("pipeline_runs", "pipeline_configs", "schedules"):
            self.db[kind].create_index([("status", 1), ("creation", -1)], name="by_status")
        self.outbox.indexes()

    def conflict(self, collection: MongoCollection, id: str, expect: dict[str, Any],
                 session: Any = None) -> NotFound | TransitionConflict:  # fmt: skip
        """The error for a compare-and-set on ``id`` that matched nothing.

        Args:
            collection: Where the compare-and-set looked.
            id: The work's id.
            expect: The fields it expected.
            session: The transaction it ran in, if any (so this reads what it saw).
        """
        found = collection.raw.find_one({"_id": id}, {"status": 1, "attempt": 1, "_moving": 1},
                                        session=session)  # fmt: skip
        if found is None or (collection.name == "work" and found.get("_moving")):
            where = "bucket" if collection.name == "work" else collection.name
            return NotFound(f"no work {id} in the {where}", field="id", id=id)
        return TransitionConflict(
            f"work {id} is {found.get('status')} at attempt {found.get('attempt')}, not as "
            f"expected {expect}", field="attempt" if "attempt" in expect else "status",
            id=id, status=found.get("status"), attempt=found.get("attempt"), expected=expect)

    @guarded
    def claim(self, pipelines: list[str], query: Query, claim: Claim, limit: int = 1
              ) -> list[Doc]:  # fmt: skip
        ready = {"status": "queued", "pipeline": {"$in": list(pipelines)},
                 "$or": [{"not_before": None}, {"not_before": {"$lte": claim.now}}]}  # fmt: skip
        where = joined(ready, query, {"_moving": {"$exists": False}})
        order = [("priority", -1), ("creation", 1), ("id", 1)]
        taken: list[Doc] = []
        for _ in range(10):  # each round re-reads what others took meanwhile
            wanted = limit - len(taken)
            candidates = list(self.db["work"].find(where, HIDDEN).sort(order).limit(wanted * 2))
            for doc in candidates:
                new = claimed(doc, claim)
                # Set only the claim's fields: a change since the read (an operator's new
                # priority) keeps status and attempt, so it passes the compare-and-set,
                # and writing the whole document read before would undo it.
                cas = joined(where, {"_id": doc["id"], "attempt": doc.get("attempt", 0)})
                # (``_id`` is projected and dropped here: mongomock re-reads the updated
                # document by it, and by the no longer matching filter without it.)
                got = self.db["work"].find_one_and_update(
                    cas, {"$set": {field: new[field] for field in CLAIMED}},
                    {"_words": 0, "_moving": 0}, return_document=ReturnDocument.AFTER)  # fmt: skip
                if got is not None:
                    del got["_id"]
                    taken.append(got)
                    if len(taken) == limit:
                        return taken
            if len(candidates) < wanted * 2:
                break
        return taken

    @guarded
    def finish(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
               ) -> Doc:  # fmt: skip
        if self.db["work"].find_one({"_id": id, **expect}, {"_id": 1}) is None:
            raise self.conflict(self.work, id, expect)
        if self.db["results"].find_one({"_id": id}, {"_id": 1}) is not None:
            raise DuplicateWork(f"work {id} is in the results already", field="id", id=id)
        moving = {**self.work.stored(doc), "_moving": True}

        def move(session: Any) -> None:
            if not self.db["work"].find_one_and_replace({"_id": id, **expect}, moving,
                                                        session=session):  # fmt: skip
                raise self.conflict(self.work, id, expect, session)
            self._move(doc, session)

        self.outbox.written_with(move, notes, doc, transact=True)
        # After the move, outside its transaction: every finish of a pipeline in the same
        # minute increments the same document, and in transactions those increments
        # would be write conflicts. A crash in between misses one count, never adds one.
        self.count_minute(doc)
        return doc

    def _move(self, doc: Doc, session: Any = None) -> None:
        """Steps 2 and 3 of a move (both idempotent), in ``session``'s transaction if any."""
        self.db["results"].replace_one({"_id": doc["id"]}, self.results.stored(doc),
                                       upsert=True, session=session)  # fmt: skip
        self.db["work"].delete_one({"_id": doc["id"], "_moving": True}, session=session)

    def transacted(self, step: Callable[[Any], None]) -> None:
        """Run ``step(session)`` in a transaction of its own on a replica set, else
        ``step(None)``.

        The session exists only in this call and is handed to ``step``, which passes it to
        each of its collection calls: the store is shared by every thread, so a session
        kept on it would let another thread's calls join this transaction. pymongo's
        ``with_transaction`` runs ``step`` again when the server aborted it for a
        transient reason (a write conflict with another finish of the same work): its
        writes are then undone, so it starts afresh, and its compare-and-set decides.
        """
        if not self.transactions:
            step(None)
            return
        with self.client.start_session() as session:
            session.with_transaction(step)

    def count_minute(self, doc: Doc) -> None:
        """Count ``doc`` as finished in its minute (never inside a transaction)."""
        minute = int(float(doc.get("stop") or doc.get("creation") or 0) // 60 * 60)
        key = {"minute": minute, "pipeline": doc["pipeline"], "status": doc["status"]}
        self.db["minutes"].update_one(key, {"$inc": {"n": 1}}, upsert=True)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Nothing: each write is its own compare-and-set. A MongoDB transaction cannot
        let one write of several fail alone (any error aborts it all), and one the server
        aborts must be run again whole, which the body of a ``with`` cannot be."""
        yield

    @contextmanager
    def promptly(self) -> Iterator[bool]:
        yield False

    @guarded
    def finished_per_minute(self, since: float) -> list[tuple[int, str, str, int]]:
        rows = self.db["minutes"].find({"minute": {"$gte": since}}).sort("minute", 1)
        return [(int(r["minute"]), str(r["pipeline"]), str(r["status"]), int(r["n"]))
                for r in rows]  # fmt: skip

    @guarded
    def tidy(self) -> None:
        """Finish the moves to the results that a crash interrupted."""
        self._tidy()

    def _tidy(self) -> None:
        for doc in self.db["work"].find({"_moving": True}, HIDDEN):
            self._move(doc)

    @guarded
    def expired(self, now: float, limit: int = 100) -> list[Doc]:
        where = {"status": "running", "lease.expires": {"$lt": now}, "_moving": {"$exists": False}}
        return list(self.db["work"].find(where, HIDDEN).sort("lease.expires", 1).limit(limit))

    @guarded
    def settings(self) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d["settings"] for d in self.db["pipelines"].find()}

    @guarded
    def put_settings(self, pipeline: str, settings: dict[str, Any]) -> None:
        self.db["pipelines"].replace_one({"_id": pipeline}, {"_id": pipeline, "settings": settings},
                                         upsert=True)  # fmt: skip

    @guarded
    def runners(self) -> list[Doc]:
        return list(self.db["runners"].find({}, {"_id": 0}).sort("_id", 1))

    @guarded
    def put_runner(self, doc: Doc) -> None:
        self.db["runners"].replace_one({"_id": doc["id"]}, {"_id": doc["id"], **doc}, upsert=True)

    @guarded
    def touch_runner(self, id: str, seen: float, *, done: int = 0, failed: int = 0,
                     stopped: float | None = None, new: Doc | None = None) -> None:  # fmt: skip
        # One update, so the figures of several servers add up ($max, $inc).
        update: Doc = {"$max": {"last_seen": seen}, "$inc": {"done": done, "failed": failed}}
        if stopped is not None:
            update["$set"] = {"stopped": stopped}
        if new is not None:
            update["$setOnInsert"] = {
                k: v for k, v in new.items() if k not in ("last_seen", "done", "failed", "stopped")
            }
        self.db["runners"].update_one({"_id": id}, update, upsert=new is not None)

    @guarded
    def forget_runners(self, before: float) -> int:
        return int(self.db["runners"].delete_many({"last_seen": {"$lt": before}}).deleted_count)

    def follow(self, on_claimable: Callable[[float | None], None],
               on_finished: Callable[[str], None], on_lost: Callable[[], None]
               ) -> mongo_changes.StreamFollowing | None:  # fmt: skip
        """Follow the database's change stream (see ``workflow.store.mongo_changes``);
        None where the deployment has none (a standalone server, or mongomock).

        Raises:
            StoreUnavailable: the stream could not be opened (the server is unreachable).
        """
        if not isinstance(self.client, pymongo.MongoClient):
            return None  # a stand-in (mongomock) has no change streams
        try:
            return mongo_changes.StreamFollowing(functools.partial(mongo_changes.watch, self.db),
                                                 on_claimable, on_finished, on_lost)  # fmt: skip
        except PyMongoError as exc:
            if isinstance(exc, OperationFailure) and exc.code in mongo_changes.NO_CHANGE_STREAMS:
                return None  # "The $changeStream stage is only supported on replica sets"
            raise StoreUnavailable(f"MongoDB change stream not opened: {exc}") from exc

    def close(self) -> None:
        self.client.close()

