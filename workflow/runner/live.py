"""What running attempts write, and how their graphs' nodes stand, sent to the server as
it happens.

Each attempt writes into a file of its own under the runner's spool
(``logs/RUNNER/ID.ATTEMPT.log``): a function's stdout, stderr and logging
(``workflow.runner.child``), a command's output (``workflow.runner.command``), a graph's
nodes. A thread reads what is new in each file at most once a second and sends it, with
the node states that changed, every running attempt's in one request
(``POST /buckets/progress``). It reads at most ``LOG_CHUNK`` bytes of a file at once,
the latest, and so skips ahead when an attempt writes faster than that (the server
marks the gap): however much an attempt writes, the runner's memory stays flat.

When the attempt ends (``end``), what was not sent yet (its last ``LOG_CHUNK`` bytes at
most) goes with the outcome, through the journal; the whole file goes to the archive
when the runner has one and the work's ``config.archive.logs`` says ``move`` or
``copy`` (its path goes with the outcome), and is deleted otherwise.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from workflow import errors
from workflow.client import Client
from workflow.runner.report import Reporter
from workflow.wire import LOG_CHUNK, LogChunk, NodeState, Outcome, Progress

#: Seconds between two sends.
PERIOD = 1.0
#: Most bytes of logs in one request.
REQUEST = 8 * LOG_CHUNK
#: Seconds after which a file left in the spool by a runner that died is removed.
STALE = 86400.0


@dataclass
class _Attempt:
    id: str
    attempt: int
    path: Path
    sent: int = 0  # bytes of the file the server has (or that were skipped)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    nodes_sent: dict[str, NodeState] = field(default_factory=dict)
    gone: bool = False  # the server no longer takes reports of it


class Live:
    """The running attempts' logs and nodes, and the thread that sends them."""

    def __init__(self, client: Client, spool: Path, runner: str, reporter: Reporter):
        self.client = client
        self.folder = spool / "logs" / runner.replace("/", "_")
        self.report = reporter
        self._lock = threading.Lock()
        self._open: dict[str, _Attempt] = {}  # by work id
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._tidy(spool / "logs")

    def start(self, work: dict[str, Any]) -> str:
        """The file the attempt of ``work`` about to start writes to."""
        path = self.folder / f"{work['id']}.{work['attempt']}.log"
        with self._lock:
            if self._thread is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._thread = threading.Thread(target=self._send_forever, daemon=True,
                                                name="workflow-live")  # fmt: skip
                self._thread.start()
            self._open[work["id"]] = _Attempt(work["id"], int(work["attempt"]), path)
        return str(path)

    def noted(self, id: str, node: str, state: str) -> None:
        """A node of the graph attempt of work ``id`` started (``running``) or ended."""
        with self._lock:
            attempt = self._open.get(id)
            if attempt is not None:
                attempt.nodes[node] = cast(NodeState, state)

    def end(self, work: dict[str, Any], outcome: Outcome, archive: Path | None) -> None:
        """The attempt of ``work`` ended with ``outcome``: give the outcome the rest of
        its log, and archive or delete the file."""
        with self._lock:
            attempt = self._open.pop(work["id"], None)
        if attempt is None:
            return
        rest = _read(attempt)
        if rest is None and attempt.sent == 0:
            attempt.path.unlink(missing_ok=True)
            return
        size = rest.end if rest is not None else attempt.sent
        outcome.log = rest or LogChunk(offset=size, end=size)
        if archive is not None:
            from workflow.runner.archive import archive_log

            outcome.log.file = archive_log(work, attempt.path, archive)
        attempt.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop sending (the runner stops)."""
        self._stopping.set()

    def _send_forever(self) -> None:
        while not self._stopping.wait(PERIOD):
            with self._lock:
                running = [a for a in self._open.values() if not a.gone]
            if running:
                self._send(running)

    def _send(self, running: list[_Attempt]) -> None:
        reports: list[tuple[_Attempt, Progress]] = []
        size = 0
        for attempt in running:
            chunk = _read(attempt)
            with self._lock:
                nodes = dict(attempt.nodes) if attempt.nodes != attempt.nodes_sent else None
            if chunk is None and nodes is None:
                continue
            reports.append((attempt, Progress(id=attempt.id, attempt=attempt.attempt,
                                              log=chunk, nodes=nodes)))  # fmt: skip
            size += len(chunk.text) if chunk is not None else 0
            if size >= REQUEST:
                break  # the rest next time
        if not reports:
            return
        try:
            replies = self.client.progress([report for _, report in reports])
        except errors.WorkflowError as exc:
            self.report.problem(f"cannot send what {len(reports)} attempts wrote: {exc.message}")
            return
        for (attempt, report), reply in zip(reports, replies, strict=True):
            if reply.get("ok"):
                if report.log is not None:
                    attempt.sent = report.log.end
                if report.nodes is not None:
                    attempt.nodes_sent = report.nodes
            elif reply.get("status_code") in (403, 404, 409):
                attempt.gone = True  # ended, cancelled or taken away: its outcome says

    def _tidy(self, logs: Path) -> None:
        """Remove what runners that died left in the spool a day ago or more."""
        if not logs.is_dir():
            return
        cutoff = time.time() - STALE
        for path in logs.glob("*/*.log"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue


def _read(attempt: _Attempt) -> LogChunk | None:
    """What is new in the attempt's file: at most ``LOG_CHUNK`` bytes, the latest, cut
    after the last whole character."""
    try:
        size = attempt.path.stat().st_size
    except OSError:
        return None
    if size <= attempt.sent:
        return None
    start = max(attempt.sent, size - LOG_CHUNK)
    with attempt.path.open("rb") as file:
        file.seek(start)
        data = file.read(size - start)
    data = data[: _whole(data)]
    if not data:
        return None
    text = data.decode(errors="replace").replace("\x00", "\N{REPLACEMENT CHARACTER}")
    return LogChunk(offset=start, end=start + len(data), text=text)


def _whole(data: bytes) -> int:
    """How many bytes of ``data`` end with a whole UTF-8 character (a character cut at
    the end is sent once the rest of it is written)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: whole if its sequence is complete
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)
