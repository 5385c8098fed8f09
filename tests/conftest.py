"""Shared fixtures: a clean environment, real ``workflow serve`` and ``workflow run`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


#: The ``usertasks`` module that runners in the tests import.
TASKS = '''
import ctypes, logging, os, sys, time
from workflow import Retry

def double(x):
    return {"doubled": 2 * x}

def boom(x):
    raise ValueError(f"bad input {x}")

def slow(seconds):
    time.sleep(seconds)
    return {"slept": seconds}

def vanish():
    os._exit(7)

def segfault():
    ctypes.string_at(0)

def wrong():
    return [1, 2]

def prints(line, seconds):
    # Not flushed: the line must reach the log as it is printed all the same.
    print(line, "at", time.time())
    print("to stderr:", line, file=sys.stderr)
    logging.getLogger("usertasks").info("logged: %s", line)
    os.write(1, b"straight to file descriptor 1\\n")
    time.sleep(seconds)
    return {"printed": line}

def counted(path, x, fail_while=None):
    # One line in ``path`` per run: the side effect the tests count.
    with open(path, "a") as out:
        out.write("ran\\n")
    if fail_while and os.path.exists(fail_while):
        raise RuntimeError(f"{fail_while} is there")
    return x + 1

def echo(**parameters):
    return parameters

def floods(megabytes):
    line = "x" * 99 + "\\n"
    for _ in range(megabytes * 10_000):
        sys.stdout.write(line)
    print("the last line")
    return {"wrote": megabytes}

def flaky(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise Retry(delay=0, reason="not ready yet")
    return {"ready": True}

def with_products(work, path):
    with open(path, "w") as out:
        out.write(work.pipeline)
    return {"wrote": path}, [path], []
'''


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    """A directory holding the ``usertasks`` module."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "usertasks.py").write_text(textwrap.dedent(TASKS))
    return folder


@pytest.fixture
def runner(server: Server, tasks: Path, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: ``runner(*args)`` starts ``workflow run *args`` against ``server``."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, url: str | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, "WORKFLOW_URL": url or server.url, "PYTHONPATH": str(tasks),
               "XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}  # fmt: skip
        process = subprocess.Popen([sys.executable, "-m", "workflow", "run", *args], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        if process.stdout and not process.stdout.closed:
            process.communicate()
