"""What running attempts write, and how their graphs' nodes stand, sent to the server as
it happens.

What attempts write lands in files of the runner's spool (``logs/RUNNER/``): a warm
child's output in its own file, each attempt's bytes a stretch of it
(``workflow.runner.child``, ``workflow.runner.slot``); a command's output in a file per
attempt (``workflow.runner.command``). A thread reads what is new for each running
attempt at most once a second and sends it, with the node states that changed, every
running attempt's in one request (``POST /buckets/progress``). It reads at most
``LOG_CHUNK`` bytes of an attempt at once, the latest, and so skips ahead when an
attempt writes faster than that (the server marks the gap): however much an attempt
writes, the runner's memory stays flat.

When the attempt ends (``end``), what was not sent yet (its last ``LOG_CHUNK`` bytes at
most) goes with the outcome, through the journal; the whole of it goes to the archive
when the runner has one and the work's ``config.archive.logs`` says ``move`` or
``copy`` (its path goes with the outcome). An attempt that wrote nothing costs nothing
here: no file, no read, no request.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from workflow import errors
from workflow.client import Client
from workflow.runner.archive import archive_log
from workflow.runner.report import Reporter
from workflow.runner.slots import Slots
from workflow.wire import LOG_CHUNK, LogChunk, NodeState, Outcome, Progress

#: Seconds between two sends.
PERIOD = 1.0
#: Most bytes of logs in one request.
REQUEST = 8 * LOG_CHUNK
#: Seconds after which a file left in the spool by a runner that died is removed.
STALE = 86400.0


def log_folder(spool: Path, runner: str) -> Path:
    """Where the runner ``runner`` keeps what its attempts write."""
    return spool / "logs" / runner.replace("/", "_")


@dataclass
class _Attempt:
    id: str
    attempt: int
    path: str = ""  # the file its output is in
    start: int = 0  # where in the file it starts
    end: int | None = None  # where it ends, once the attempt has ended
    sent: int = 0  # bytes of its output the server has (or that were skipped)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    nodes_sent: dict[str, NodeState] = field(default_factory=dict)
    gone: bool = False  # the server no longer takes reports of it
    own_file: bool = False  # a command's: removed once the attempt ended


class Live:
    """The running attempts' logs and nodes, and the thread that sends them.

    It is the slots' ``Watcher``: a slot tells it where each attempt's output ended, and
    the nodes a graph attempt starts and ends.
    """

    def __init__(self, client: Client, folder: Path, reporter: Reporter, slots: Slots):
        self.client = client
        self.folder = folder
        self.report = reporter
        self.slots = slots
        self._lock = threading.Lock()
        self._seen: dict[str, _Attempt] = {}  # by work id: sent from, or ended
        self._commands: dict[str, _Attempt] = {}  # running commands, by work id
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._send_forever, daemon=True,
                                        name="workflow-live")  # fmt: skip
        self._thread.start()
        _tidy(folder.parent)

    # -- told by the slots and the runner ------------------------------------------------

    def command(self, work: dict[str, Any]) -> str:
        """The file the command attempt of ``work`` about to start writes to."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{work['id']}.{work['attempt']}.log"
        with self._lock:
            self._commands[work["id"]] = _Attempt(work["id"], int(work["attempt"]), str(path),
                                                  own_file=True)  # fmt: skip
        return str(path)

    def noted(self, key: str, node: str, state: str) -> None:
        with self._lock:
            attempt = self._seen.get(key)
            if attempt is None:
                attempt = self._seen[key] = _Attempt(key, 0)
            attempt.nodes[node] = cast(NodeState, state)

    def wrote(self, key: str, path: str, start: int, end: int) -> None:
        with self._lock:
            attempt = self._seen.get(key)
            if attempt is None:
                if end <= start:
                    return  # the common case: it wrote nothing, and said nothing
                attempt = self._seen[key] = _Attempt(key, 0)
            attempt.path, attempt.start, attempt.end = path, start, end

    def end(self, work: dict[str, Any], outcome: Outcome, archive: Path | None) -> None:
        """The attempt of ``work`` ended with ``outcome``: give the outcome the rest of
        its log, and archive the whole (a command's file is removed)."""
        if not self._seen and not self._commands:
            return
        with self._lock:
            attempt = self._seen.pop(work["id"], None) or self._commands.pop(work["id"], None)
        if attempt is None:
            return
        if attempt.own_file:
            with contextlib.suppress(OSError):
                attempt.end = os.stat(attempt.path).st_size
        end = attempt.end if attempt.end is not None else attempt.start + attempt.sent
        if end - attempt.start > 0:
            rest = _read(attempt, end)
            size = end - attempt.start
            outcome.log = rest or LogChunk(offset=size, end=size)
            if archive is not None:
                outcome.log.file = archive_log(work, attempt.path, attempt.start, end, archive)
        if attempt.own_file:
            with contextlib.suppress(OSError):
                os.unlink(attempt.path)

    def close(self) -> None:
        """Stop sending (the runner stops)."""
        self._stopping.set()

    # -- the thread ------------------------------------------------------------------------

    def _running(self) -> list[_Attempt]:
        """Every attempt running now, with where its output is."""
        heads = [head for slot in self.slots.every() if (head := slot.running()) is not None]
        with self._lock:
            running = [a for a in self._commands.values() if not a.gone]
            for key, number, path, start in heads:
                attempt = self._seen.get(key)
                if attempt is None or attempt.end is not None:
                    if attempt is not None:
                        continue  # it has ended: its outcome takes the rest
                    attempt = self._seen[key] = _Attempt(key, number)
                attempt.attempt, attempt.path, attempt.start = number, path, start
                if not attempt.gone:
                    running.append(attempt)
        return running

    def _send_forever(self) -> None:
        while not self._stopping.wait(PERIOD):
            try:
                running = self._running()
                if running:
                    self._send(running)
            except Exception as exc:  # noqa: BLE001 - logs must never stop the runner
                self.report.problem(f"cannot send what attempts wrote: {exc}")

    def _send(self, running: list[_Attempt]) -> None:
        reports: list[tuple[_Attempt, Progress]] = []
        size = 0
        for attempt in running:
            chunk = _read(attempt, None)
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


def _read(attempt: _Attempt, end: int | None) -> LogChunk | None:
    """What the server does not have yet of the attempt's output (up to byte ``end`` of
    the file, or to its end): at most ``LOG_CHUNK`` bytes, the latest, cut after the
    last whole character; offsets count from the attempt's first byte."""
    if not attempt.path:
        return None
    try:
        with open(attempt.path, "rb") as file:
            last = end if end is not None else os.fstat(file.fileno()).st_size
            first = max(attempt.start + attempt.sent, last - LOG_CHUNK)
            if last <= first:
                return None
            file.seek(first)
            data = file.read(last - first)
    except OSError:
        return None
    if end is None:
        data = data[: _whole(data)]  # a character cut at the end goes next time
    if not data:
        return None
    text = data.decode(errors="replace").replace("\x00", "\N{REPLACEMENT CHARACTER}")
    offset = first - attempt.start
    return LogChunk(offset=offset, end=offset + len(data), text=text)


def _whole(data: bytes) -> int:
    """How many bytes of ``data`` end with a whole UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: whole if its sequence is complete
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _tidy(logs: Path) -> None:
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
