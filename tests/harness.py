"""A real ``workflow serve`` process for tests: start, stop, ``kill -9``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A real ``workflow serve`` subprocess on loopback."""

    store: str
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _out: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Server:
        """Start the process and wait until ``/version`` answers."""
        env = {**os.environ, "WORKFLOW_REAP_INTERVAL": "0.2", **self.env}
        self._close_log()
        self._out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        out = self._out
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workflow", "serve", "--port", str(self.port),
             "--store", self.store, *self.args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"workflow serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/version", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("workflow serve did not answer in time")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._out not in (None, subprocess.DEVNULL):
            self._out.close()
        self._out = None

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), falling back to SIGKILL."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()


@contextmanager
def running(root: Path, env: dict[str, str]) -> Iterator[Server]:
    """A server on a new SQLite file in ``root`` with ``env``, stopped on leaving."""
    server = Server(store=f"sqlite:///{root / 'store.db'}", log=root / "server.log", env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def until(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    """What ``check()`` returns once it is true, asked every 0.1 s for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def deposit(server: Server, **work: Any) -> str:
    """Deposit one work over HTTP; its id."""
    reply = httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                       json=[work], timeout=10)  # fmt: skip
    reply.raise_for_status()
    return str(reply.json()[0])
