"""Shared fixtures: a clean environment and real ``workflow serve`` processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Server


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``WORKFLOW_*`` variable of the developer's shell leaks into a test (the tests' own
    ``WORKFLOW_TEST_*`` settings stay)."""
    for name in list(os.environ):
        if name.startswith("WORKFLOW_") and not name.startswith("WORKFLOW_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``make_server(env={...}, args=[...], store=...)`` starts a server."""
    servers: list[Server] = []

    def make(store: str | None = None, **kwargs: object) -> Server:
        store = store or f"sqlite:///{tmp_path / f'store{len(servers)}.db'}"
        server = Server(store=store, log=tmp_path / f"server{len(servers)}.log", **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """One running server on a fresh SQLite file."""
    return make_server()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole session; tests keep apart by using their own pipelines."""
    root = tmp_path_factory.mktemp("shared")
    server = Server(store=f"sqlite:///{root / 'store.db'}", log=root / "server.log",
                    env={"WORKFLOW_RESULTS_LIMIT": "100000"})  # fmt: skip
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Like ``shared_server``, with every route served through plain FastAPI (no fast
    path for the runners' calls)."""
    root = tmp_path_factory.mktemp("plain")
    server = Server(store=f"sqlite:///{root / 'store.db'}", log=root / "server.log",
                    env={"WORKFLOW_RESULTS_LIMIT": "100000", "WORKFLOW_FAST_PATHS": "0"})
    server.start()
    yield server
    server.stop()
