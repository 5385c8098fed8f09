"""The conformance suite runs every test against every backend.

Each test gets ``buckets`` and ``results``, the two sets of verbs (``workflow.verbs``):
in-process, ``Buckets`` and ``Results`` straight on a SQLite or a Mongo store; over
HTTP, the ``Client`` talking to a real ``workflow serve`` process, once with the
runners' routes answered on the fast path and once through plain FastAPI.

In-process, every status change the verbs make is recorded and checked against the
status table (``workflow.work.TRANSITIONS``) after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import MONGO_URL, mongo_store

from workflow.buckets import Buckets
from workflow.client import Client
from workflow.results import Results
from workflow.store import Store, open_store
from workflow.work import TRANSITIONS, Work

BACKENDS = ["sqlite", "http", "http-plain", "mongo"]


class Recording:
    """A store that records the status changes written through it: (from, to)."""

    def __init__(self, store: Store):
        self._store = store
        self.moves: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def finish(self, id: str, expect: dict[str, Any], doc: dict[str, Any], notes: Any = ()
               ) -> Any:  # fmt: skip
        self.moves.append((expect["status"], doc["status"]))
        return self._store.finish(id, expect, doc, notes)

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        taken = self._store.claim(*args, **kwargs)
        self.moves += [("queued", "running")] * len(taken)
        return taken

    @property
    def work(self) -> Any:
        return _RecordingCollection(self._store.work, self.moves)


class _RecordingCollection:
    def __init__(self, collection: Any, moves: list[tuple[str, str]]):
        self._collection = collection
        self._moves = moves

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def swap(self, id: str, expect: dict[str, Any], doc: dict[str, Any], notes: Any = ()
             ) -> Any:  # fmt: skip
        self._moves.append((expect["status"], doc["status"]))
        return self._collection.swap(id, expect, doc, notes)


@pytest.fixture(params=BACKENDS)
def verbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """The bucket and results verbs of the backend under test, with a results limit of
    100,000 bytes."""
    if request.param.startswith("http"):
        name = "shared_server" if request.param == "http" else "plain_server"
        client = Client(request.getfixturevalue(name).url, retry_for=2)
        yield client, client
        client.close()
        return
    if request.param == "sqlite":
        store: Store = open_store(f"sqlite:///{tmp_path / 'conformance.db'}")
    else:
        store = mongo_store()
    recording = Recording(store)
    # A short reap interval: on a shared store (MongoDB), a runner counts as offline a
    # reap interval after its lease, since other servers write what they saw that often.
    yield (Buckets(recording, results_limit=100_000, reap_interval=0.2),  # type: ignore[arg-type]
           Results(store, results_limit=100_000))  # fmt: skip
    if request.param == "mongo" and MONGO_URL:
        store.client.drop_database(store.db.name)  # type: ignore[attr-defined]
    store.close()
    wrong = [(a, b) for a, b in recording.moves if a != b and b not in TRANSITIONS[a]]
    assert not wrong, f"status changes the table forbids: {wrong}"


@pytest.fixture
def buckets(verbs: tuple[Any, Any]) -> Any:
    """The bucket verbs of the backend under test."""
    return verbs[0]


@pytest.fixture
def results(verbs: tuple[Any, Any]) -> Any:
    """The results verbs of the backend under test."""
    return verbs[1]


@pytest.fixture
def pipeline() -> str:
    """A pipeline name no other test uses (the HTTP backend's server is shared)."""
    return f"p-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_work(pipeline: str) -> Any:
    """Factory of works in this test's pipeline; retries without backoff by default."""

    def make(**fields: Any) -> Work:
        fields.setdefault("pipeline", pipeline)
        fields.setdefault("backoff", 0)
        return Work(**fields)

    return make
