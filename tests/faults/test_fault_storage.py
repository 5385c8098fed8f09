"""Fault tier: the store's disk fills up, and another process locks the database file.
Deposits are either acknowledged and kept, or refused with a JSON error and not kept;
the server stays up and carries on once the disk has room or the lock is gone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fleet import assert_exactly_once
from harness import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (the test runs as root, as CI does; mounting is its only privilege)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                             capture_output=True, text=True)  # fmt: skip
    assert mounted.returncode == 0, f"cannot mount a tmpfs for the disk-full test: {mounted.stderr}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _batch(size: int, pad: int) -> list[dict[str, object]]:
    return [{"id": f"d-{uuid.uuid4().hex[:16]}", "pipeline": "full",
             "parameters": {"pad": "x" * pad}} for _ in range(size)]  # fmt: skip


def test_disk_full_while_depositing(small_disk: Path, make_server: Callable[..., Server]) -> None:
    # (small_disk first: it is unmounted after the server has stopped)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 600_000)  # room to give back once the disk is full
    server = make_server(store=f"sqlite:///{small_disk / 'store.db'}")
    acknowledged: set[str] = set()
    refused: set[str] = set()
    errors: list[dict[str, object]] = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(200):
            batch = _batch(20, 4000)
            reply = http.post("/buckets/work", params={"return_ids": "true"}, json=batch)
            if reply.status_code == 200:
                acknowledged.update(reply.json())
                continue
            assert reply.status_code == 503, reply.text
            errors.append(reply.json())
            refused.update(w["id"] for w in batch)  # type: ignore[misc]
            if len(errors) >= 3:
                break
        assert errors, "the disk never filled up"
        assert all("full" in str(e["message"]) for e in errors), errors
        assert http.get("/buckets/counts").status_code == 200, "reads go on while it is full"
        filler.unlink()  # room again: the same server carries on
        after = _batch(5, 100)
        reply = http.post("/buckets/work", params={"return_ids": "true"}, json=after)
        assert reply.status_code == 200, reply.text
        acknowledged.update(reply.json())
    stored = assert_exactly_once(server.url, acknowledged)
    ids = {doc["id"] for doc in stored["bucket"]}
    assert not ids & refused, "a refused deposit was kept"
    assert len(acknowledged) >= 40


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_database_locked_by_another_process(make_server: Callable[..., Server],
                                            tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "locked.db"
    server = make_server(store=f"sqlite:///{path}")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        before = http.post("/buckets/work", params={"return_ids": "true"},
                           json=_batch(3, 10)).json()  # fmt: skip
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path), "3"],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        started = time.monotonic()
        replies: list[httpx.Response] = []

        def deposit() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as other:
                replies.append(other.post("/buckets/work", params={"return_ids": "true"},
                                          json=_batch(2, 10)))  # fmt: skip

        writers = [threading.Thread(target=deposit) for _ in range(3)]
        for writer in writers:
            writer.start()
        time.sleep(0.5)
        # Reads answer while another process holds the write lock.
        read = http.get("/buckets/counts")
        assert read.status_code == 200 and time.monotonic() - started < 2.5
        for writer in writers:
            writer.join()
        locker.communicate(timeout=10)
        assert locker.returncode == 0
        waited = time.monotonic() - started
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert waited >= 2.5, "the deposits waited for the lock, then went through"
    acknowledged = set(before) | {id for r in replies for id in r.json()}
    stored = assert_exactly_once(server.url, acknowledged)
    assert len(stored["bucket"]) == 9
