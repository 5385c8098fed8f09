"""Each attempt's log, and a running graph's nodes, as the attempt runs.

A runner sends what its attempts write as they write it (``progress``, at most once a
second), and the rest with each outcome (``complete`` calls ``keep_log``). The store
keeps, per attempt, how many bytes it wrote (``size``) and the last ``log_limit`` bytes
of text (``text``), whatever the attempt writes: 50 MB of output leave at most the
limit in the store (the whole log goes to the archive, when the runner has one, and its
history entry names the file).

A chunk names the bytes of the log it holds (``offset`` to ``end``), so a chunk sent
twice is kept once, and bytes never sent (a runner skips ahead when an attempt writes
faster than it sends) are marked in the text. ``written`` counts every byte appended to
the text so far, marks included: a reader that last saw ``written`` = N asks for what
came after N (``logs(after=N)``), which is how ``workflow logs -f`` and the work page
follow a log.

``Buckets`` has these as its own (``class Buckets(..., LogVerbs)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workflow.errors import StoreUnavailable
from workflow.history import LogInfo
from workflow.store.base import Doc, Store
from workflow.wire import LogChunk, Progress

#: Compare-and-set tries of one append before giving up (other servers appending).
TRIES = 20


class LogVerbs:
    """The attempts' logs and the progress of running graphs."""

    store: Store
    clock: Callable[[], float]
    log_limit: int

    # Defined by ``Buckets``.
    _running: Callable[..., Doc]
    _one_by_one: Callable[..., list[Doc]]
    move: Callable[[Doc, Doc], Doc]
    get: Callable[[str], Doc]

    def progress(self, reports: Sequence[Progress], *, holder: str | None = None
                 ) -> list[Doc]:  # fmt: skip
        """Record what running attempts wrote and, for graphs, the state of their nodes;
        each report recorded or refused on its own (as ``heartbeat_many``).

        Returns:
            Per report, in order: ``{"id", "ok": True, "size"}`` (the bytes of the log
            the server has) or the error (``TransitionConflict`` when the attempt is no
            longer running, ``Forbidden`` when ``holder`` did not claim it).
        """

        def record(report: Progress) -> Doc:
            doc = self._running(report.id, report.attempt, holder)
            size = self.keep_log(report.id, report.attempt, report.log).size
            nodes = report.nodes
            if nodes is not None and (doc.get("progress") or {}).get("nodes") != nodes:
                self.move(doc, {**doc, "progress": {"nodes": nodes}})
            return {"size": size}

        return self._one_by_one(reports, record)

    def keep_log(self, id: str, attempt: int, chunk: LogChunk | None) -> LogInfo:
        """Append ``chunk`` to the log of attempt ``attempt`` of ``id``; what the store
        then has of it. The caller checked that the attempt is the caller's.

        Raises:
            StoreUnavailable: other servers kept appending to the same log meanwhile.
        """
        file = chunk.file if chunk is not None else None
        for _ in range(TRIES):
            old = self.store.logs.get(id, attempt)
            new = None if chunk is None else appended(old, id, attempt, chunk,
                                                      self.log_limit, self.clock())  # fmt: skip
            if new is None:
                return LogInfo(size=old["size"] if old else 0, file=file)
            if self.store.logs.put(new, old["size"] if old else None):
                return LogInfo(size=new["size"], file=file)
        raise StoreUnavailable(f"the log of {id} attempt {attempt} kept changing; try again")

    def logs(self, id: str, attempt: int | None = None, after: int | None = None) -> Doc:
        """The log of attempt ``attempt`` of work ``id`` (None: its latest), all the store
        keeps of it or only what came after ``written`` = ``after``.

        Returns:
            ``{"id", "status" (the work's), "attempt", "attempts" (the attempts with a
            log), "size", "skipped",
            "written", "text", "running" (that attempt runs now), "file" (the whole log
            in the archive, once the attempt ended)}``.

        Raises:
            NotFound: no work ``id``, in the bucket or the results.
        """
        work = self.get(id)
        attempts = [int(doc["attempt"]) for doc in self.store.logs.attempts(id)]
        if attempt is None:
            attempt = max([*attempts, int(work.get("attempt") or 0)])
        doc = self.store.logs.get(id, attempt) or {}
        text, written = str(doc.get("text") or ""), int(doc.get("written") or 0)
        if after is not None:
            text = since(text, written, after)
        file = next((entry.get("log", {}).get("file") for entry in work.get("history") or []
                     if entry.get("attempt") == attempt and entry.get("log")), None)  # fmt: skip
        running = work.get("status") == "running" and work.get("attempt") == attempt
        return {"id": id, "status": work.get("status"), "attempt": attempt, "attempts": attempts,
                "size": int(doc.get("size") or 0), "skipped": int(doc.get("skipped") or 0),
                "written": written, "text": text, "running": running, "file": file}  # fmt: skip


def appended(old: Doc | None, id: str, attempt: int, chunk: LogChunk, limit: int,
             now: float) -> Doc | None:  # fmt: skip
    """The log ``old`` becomes with ``chunk``; None when the chunk adds nothing (it was
    kept already). Bytes between the log's end and the chunk's offset were never sent:
    a line says how many."""
    size = int(old["size"]) if old else 0
    if chunk.end <= size:
        return None
    data = chunk.text.encode()
    skipped = 0
    if chunk.offset < size:  # partly kept already (sent again after a lost reply)
        data = data[size - chunk.offset :]
    elif chunk.offset > size:
        skipped = chunk.offset - size
        data = (f"\n[... {skipped} bytes of this log were not sent: the attempt wrote "
                f"faster than its runner sends ...]\n").encode() + data  # fmt: skip
    text = (old["text"] if old else "").encode() + data
    if len(text) > limit:
        text = text[len(text) - limit :]
        cut = text.find(b"\n", 0, 4096)  # start at a line, when one starts near the cut
        text = text[cut + 1 :] if cut >= 0 else text
    return {"work": id, "attempt": attempt, "size": chunk.end,
            "skipped": (int(old.get("skipped") or 0) if old else 0) + skipped,
            "written": (int(old.get("written") or 0) if old else 0) + len(data),
            "text": text.decode(errors="ignore"), "updated": now}  # fmt: skip


def since(text: str, written: int, after: int) -> str:
    """What of ``text`` (the kept end of a log, ``written`` bytes appended so far) came
    after byte ``after``; all of it, marked, when some of that was dropped already."""
    new = written - after
    if new <= 0:
        return ""
    data = text.encode()
    if new > len(data):
        return "[... earlier lines are no longer kept ...]\n" + text if after else text
    return data[len(data) - new :].decode(errors="ignore")
