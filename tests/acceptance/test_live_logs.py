"""What attempts write, live, with real ``workflow serve`` and ``workflow run`` processes:
a printed line reaches ``GET /buckets/work/{id}/logs`` within 2 s while the work runs,
``workflow logs -f`` follows it, a flood of output stays bounded in the store and whole
in the archive while the runner's memory stays flat, and a graph's nodes show as they
start and end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_tasks import three_in_a_row
from harness import Server, deposit, until

pytestmark = pytest.mark.slow


def _log(server: Server, id: str, **params: Any) -> dict[str, Any]:
    reply = httpx.get(f"{server.url}/buckets/work/{id}/logs", params=params,
                      headers={"Accept": "application/json"}, timeout=10)  # fmt: skip
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def _work(server: Server, id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()  # type: ignore[no-any-return]


def _rss_peak(pid: int) -> int:
    """The process's peak resident memory, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_printed_line_is_in_the_log_within_two_seconds_and_followed_to_the_end(
        server: Server, runner: Any) -> None:  # fmt: skip
    runner("live", "usertasks.prints")
    runner("live-commands")
    id = deposit(server, pipeline="live", parameters={"line": "hello from the work",
                                                       "seconds": 6})  # fmt: skip
    command = deposit(server, pipeline="live-commands",
                       command=["sh", "-c", "echo command line at $(date +%s.%N); sleep 6"])
    seen = until(lambda: "hello from the work" in (log := _log(server, id))["text"] and log, 10)
    now = time.time()
    printed = float(seen["text"].split("hello from the work at ", 1)[1].split()[0])
    assert now - printed < 2.0, f"seen {now - printed:.2f} s after the print"
    assert seen["running"] and seen["attempt"] == 1
    later = until(lambda: "file descriptor 1" in (log := _log(server, id))["text"] and log, 5)
    for line in ("to stderr: hello from the work", "INFO usertasks: logged: hello from the work"):
        assert line in later["text"]
    shown = until(lambda: "command line at" in (log := _log(server, command))["text"] and log, 10)
    printed = float(shown["text"].split("command line at ", 1)[1].split()[0])
    assert time.time() - printed < 2.0
    # The text form, and ``workflow logs -f``, which follows until the attempt ends.
    text = httpx.get(f"{server.url}/buckets/work/{id}/logs", timeout=10)
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["x-log-running"] == "1" and "hello from the work" in text.text
    env = {**os.environ, "WORKFLOW_URL": server.url}
    follow = subprocess.run([sys.executable, "-m", "workflow", "logs", id, "-f"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.startswith("hello from the work at ")
    assert follow.stdout.count("straight to file descriptor 1") == 1
    assert _work(server, id)["status"] == "success"
    whole = subprocess.run([sys.executable, "-m", "workflow", "logs", command], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert whole.returncode == 0 and whole.stdout.startswith("command line at")
    missing = subprocess.run([sys.executable, "-m", "workflow", "logs", "nosuchwork"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_fifty_megabytes_stay_bounded_in_the_store_whole_in_the_archive_memory_flat(
        server: Server, runner: Any, tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    process = runner("flood", "usertasks.floods", "--archive", str(archive))
    small = deposit(server, pipeline="flood", parameters={"megabytes": 1})
    until(lambda: _work(server, small)["status"] == "success", 60)
    before = _rss_peak(process.pid)
    big = deposit(server, pipeline="flood", parameters={"megabytes": 50})
    done = until(lambda: (w := _work(server, big))["status"] == "success" and w, 120)
    after = _rss_peak(process.pid)
    assert after - before < 20_000, f"the runner's peak memory grew by {after - before} kB"
    log = _log(server, big)
    assert log["size"] == 50 * 1_000_000 + len("the last line\n")
    assert len(log["text"].encode()) <= 1 << 20
    assert log["text"].endswith("the last line\n")
    (entry,) = [e for e in done["history"] if e.get("kind") == "attempt"]
    archived = Path(entry["log"]["file"])
    assert archived.is_relative_to(archive) and archived.name == "log-1.txt"
    assert archived.stat().st_size == log["size"] and log["file"] == str(archived)
    assert entry["log"]["size"] == log["size"]
    spool = tmp_path / "xdg" / "workflow" / "spool" / "logs"
    kept = {path.name: path.stat().st_size for path in spool.glob("*/*.log")}
    assert set(kept.values()) <= {0}, f"the spool keeps what finished attempts wrote: {kept}"


def test_a_graphs_nodes_show_as_they_start_and_end(server: Server, runner: Any) -> None:
    runner("graphs")
    id = deposit(server, pipeline="graphs", graph=three_in_a_row(5))
    progress = until(lambda: (p := (_work(server, id).get("progress") or {}).get("nodes"))
                     and p.get("second") == "running" and p, 15)  # fmt: skip
    assert progress == {"first": "success", "second": "running"}
    done = until(lambda: (w := _work(server, id))["status"] == "success" and w, 30)
    assert done.get("progress") is None
