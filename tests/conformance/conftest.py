"""The conformance suite runs every test against every backend.

``api`` is a client with one contract: ``LocalClient`` straight on a store, and the HTTP
``Client`` talking to a real ``workflow serve`` process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import MONGO_URL, mongo_store

from workflow.client import Client
from workflow.local import LocalClient
from workflow.work import Work

BACKENDS = ["sqlite", "http", "mongo"]

@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A client of the backend under test, with a results limit of 100,000 bytes."""
    if request.param == "sqlite":
        local = LocalClient(f"sqlite:///{tmp_path / 'conformance.db'}", results_limit=100_000)
        yield local
        local.close()
    elif request.param == "mongo":
        store = mongo_store()
        local = LocalClient(store, results_limit=100_000)
        yield local
        if MONGO_URL:
            store.client.drop_database(store.db.name)
        local.close()
    else:
        server = request.getfixturevalue("shared_server")
        client = Client(server.url, retry_for=2)
        yield client
        client.close()


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
