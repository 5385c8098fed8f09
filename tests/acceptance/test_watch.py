"""``workflow watch`` as an acquisition host runs it: a subprocess watching a folder that
the test writes files into, depositing to a real ``workflow serve``."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, free_port

from workflow.watch import Stamp, file_id

pytestmark = pytest.mark.slow

#: Seconds a file must stay unchanged; the watcher looks every SETTLE / 4.
SETTLE = 0.4
#: Between two chunks of a file: longer than a look, shorter than SETTLE.
PAUSE = 0.25
LINE = re.compile(r"^(deposited|already deposited) +(\S+)  (.+)$")


class Watch:
    """A running ``workflow watch`` process; its output lines gathered as they come."""

    def __init__(self, server: Server, folder: Path, pipeline: str, *args: str):
        command = [sys.executable, "-m", "workflow", "watch", str(folder), "-p", pipeline,
                   "--settle", str(SETTLE), "--function", "pkg.reduce.run", *args]  # fmt: skip
        self.process = subprocess.Popen(command, env={**os.environ, "WORKFLOW_URL": server.url},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)  # fmt: skip
        self.out: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._gather, daemon=True)
        self._reader.start()
        try:
            self._wait_for_start()
        except BaseException:
            self.close()
            raise

    def _gather(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.out.put(line.rstrip("\n"))

    def _wait_for_start(self) -> None:
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        assert line.startswith("watching "), line + self.process.stderr.read()

    def inotify_instances(self) -> int:
        """How many inotify instances the process holds (Linux)."""
        found = 0
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                found += os.readlink(fd) == "anon_inode:inotify"
        return found

    def lines(self, count: int, timeout: float = 10.0) -> list[tuple[str, str, str]]:
        """The next ``count`` output lines as (what, id, path)."""
        deadline = time.monotonic() + timeout
        got = []
        for _ in range(count):
            line = self.out.get(timeout=max(0.0, deadline - time.monotonic()))
            match = LINE.match(line)
            assert match, line
            got.append((match[1], match[2], match[3]))
        return got

    def quiet(self, seconds: float = 3 * SETTLE) -> None:
        """Nothing more is printed for ``seconds``."""
        time.sleep(seconds)
        assert self.out.empty(), self.out.get()

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send ``signum``; the exit code and the rest of standard error."""
        self.process.send_signal(signum)
        assert self.process.stderr is not None
        rest = self.process.stderr.read()
        return self.process.wait(timeout=10), rest

    def close(self) -> None:
        """Kill the process if it still runs; close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def watching(server: Server, folder: Path, pipeline: str, *args: str) -> Iterator[Watch]:
    watch = Watch(server, folder, pipeline, *args)
    try:
        yield watch
    finally:
        watch.close()


def works(server: Server, pipeline: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{server.url}/buckets/work", params={"pipeline": pipeline, "limit": 1000},
                      timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def expected_id(pipeline: str, path: Path) -> str:
    """The id of the work for ``path`` as it is now."""
    found = path.stat()
    return file_id(pipeline, path, Stamp(found.st_size, found.st_mtime_ns))


def write_in_chunks(path: Path, chunks: int = 3) -> float:
    """Write ``path`` in ``chunks`` pauses apart (the whole takes longer than SETTLE);
    the time of the last write."""
    with path.open("wb") as file:
        for index in range(chunks):
            if index:
                time.sleep(PAUSE)
            file.write(b"x" * 1000)
            file.flush()
        return time.time()


def write(folder: Path, *names: str) -> list[Path]:
    paths = [folder / name for name in names]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(path.name.encode())
    return paths


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "detector"
    made.mkdir()
    return made


def test_a_file_written_in_chunks_is_one_work_deposited_once_it_settled(
        shared_server: Server, folder: Path) -> None:  # fmt: skip
    pipeline = "watch-chunks"
    with watching(shared_server, folder, pipeline) as watch:
        assert watch.inotify_instances() == 1  # the kernel's notifications
        paths, written = [folder / "scan1.h5", folder / "scan2.h5"], []
        for path in paths:
            written.append(write_in_chunks(path))
            # Closed just now: not deposited yet, and no part of it was either.
            assert str(path) not in [w["parameters"]["path"] for w in works(shared_server,
                                                                             pipeline)]
        lines = watch.lines(2)
        watch.quiet()
    ids = [expected_id(pipeline, path) for path in paths]  # the full, final size
    assert lines == [("deposited", id, str(path)) for id, path in zip(ids, paths, strict=True)]
    found = {work["id"]: work for work in works(shared_server, pipeline)}
    assert sorted(found) == sorted(ids)
    for id, path, last_write in zip(ids, paths, written, strict=True):
        assert found[id]["parameters"] == {"path": str(path)}
        assert found[id]["function"] == "pkg.reduce.run"
        assert found[id]["creation"] >= last_write + SETTLE - 0.05  # only once it settled


def test_a_restarted_watcher_deposits_nothing_twice_and_catches_up(
        shared_server: Server, folder: Path) -> None:  # fmt: skip
    pipeline = "watch-restart"
    a, b = write(folder, "a.h5", "b.h5")
    with watching(shared_server, folder, pipeline) as watch:
        assert sorted(watch.lines(2)) == sorted(
            ("deposited", expected_id(pipeline, p), str(p)) for p in (a, b))
        assert watch.stop(signal.SIGTERM) == (0, "stopped: 2 deposited, 0 already deposited\n")
    (c,) = write(folder, "c.h5")  # while no watcher runs
    with watching(shared_server, folder, pipeline) as watch:
        assert sorted(watch.lines(3)) == sorted([
            ("already deposited", expected_id(pipeline, a), str(a)),
            ("already deposited", expected_id(pipeline, b), str(b)),
            ("deposited", expected_id(pipeline, c), str(c))])  # fmt: skip
        (d,) = write(folder, "d.h5")
        assert watch.stop(signal.SIGKILL)[0] == -signal.SIGKILL  # before d settled
    assert len(works(shared_server, pipeline)) == 3
    (e,) = write(folder, "e.h5")
    with watching(shared_server, folder, pipeline) as watch:
        said = watch.lines(5)
        assert sorted(what for what, _, path in said if path in (str(d), str(e))) == [
            "deposited", "deposited"]  # fmt: skip
        assert [what for what, _, path in said if path not in (str(d), str(e))] == [
            "already deposited"] * 3  # fmt: skip
        first_a = expected_id(pipeline, a)
        with a.open("ab") as file:  # rewritten after its deposit: a new work
            file.write(b"more")
        assert watch.lines(1) == [("deposited", expected_id(pipeline, a), str(a))]
        watch.quiet()
        assert watch.stop(signal.SIGINT)[0] == 0
    ids = [work["id"] for work in works(shared_server, pipeline)]
    assert sorted(ids) == sorted([first_a, *(expected_id(pipeline, p) for p in (a, b, c, d, e))])


def test_polling_finds_files_written_in_chunks_and_those_there_before(
        shared_server: Server, folder: Path) -> None:  # fmt: skip
    pipeline = "watch-polling"
    (before,) = write(folder, "before.h5")
    with watching(shared_server, folder, pipeline, "--polling") as watch:
        assert watch.inotify_instances() == 0
        assert watch.lines(1) == [("deposited", expected_id(pipeline, before), str(before))]
        path = folder / "scan.h5"
        write_in_chunks(path, chunks=5)  # 1 s: a poll sees it growing
        assert watch.lines(1) == [("deposited", expected_id(pipeline, path), str(path))]
        watch.quiet()
    assert len(works(shared_server, pipeline)) == 2


def test_patterns_choose_files_and_leave_out_hidden_and_temporary_ones(
        shared_server: Server, folder: Path) -> None:  # fmt: skip
    pipeline = "watch-patterns"
    with watching(shared_server, folder, pipeline, "--pattern", "*.h5",
                  "--pattern", "*.cbf") as watch:  # fmt: skip
        wanted = write(folder, "scan.h5", "frame.cbf")
        write(folder, "notes.txt", ".scan.h5", "scan.h5~", "sub/deep.h5")
        (part,) = write(folder, "late.h5.part")
        late = part.rename(folder / "late.h5")  # written, then renamed when complete
        said = watch.lines(3)
        watch.quiet()
    assert sorted(path for _, _, path in said) == sorted(map(str, [*wanted, late]))
    assert len(works(shared_server, pipeline)) == 3


def test_recursive_and_explicit_patterns_reach_into_folders_and_hidden_files(
        shared_server: Server, folder: Path) -> None:  # fmt: skip
    pipeline = "watch-recursive"
    (old,) = write(folder, "run1/old.h5")
    with watching(shared_server, folder, pipeline, "-r", "--pattern", "run*/*.h5",
                  "--pattern", "*.part") as watch:  # fmt: skip
        assert watch.lines(1) == [("deposited", expected_id(pipeline, old), str(old))]
        new = write(folder, "run2/new.h5", "run2/x.part")
        write(folder, "top.h5", ".snapshot/run1/old.h5", "run3/.hidden.h5")
        said = watch.lines(2)
        watch.quiet()
    assert sorted(path for _, _, path in said) == sorted(map(str, new))


@pytest.mark.parametrize(("name", "reason"), [("missing", "no such directory"),
                                             ("a.file", "not a directory")])
def test_a_folder_that_is_not_there_is_one_error_line(tmp_path: Path, name: str,
                                                      reason: str) -> None:  # fmt: skip
    (tmp_path / "a.file").write_text("not a folder")
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens: the folder is checked first
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "workflow", "watch", str(tmp_path / name),
                           "-p", "watch-bad", "--url", url],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: cannot watch {tmp_path / name}: {reason} (DIR)\n"
    assert time.monotonic() - started < 10
