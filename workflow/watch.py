"""``workflow watch``: one work per new, complete file in a folder.

A file is complete once its size and modification time have stayed the same for
``settle`` seconds. The file system's events (watchdog) only say which files to look at;
the settle clock is this module's own, so a file written in chunks is deposited once,
whole, and a file that vanishes before it settles is not deposited at all.

A work's id is a hash of the pipeline, the file's absolute path, its size and its
modification time. A watcher that restarts (after SIGTERM, a crash or ``kill -9``) scans
the folder again and deposits every file found; the server refuses a second deposit of
an id (``DuplicateWork``), which counts as "already deposited", so no file is deposited
twice and the files that arrived while no watcher ran are deposited. A file rewritten
after its deposit has another size or modification time, so it is a new work.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, NamedTuple

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from workflow.errors import ConfigurationError, DuplicateWork, InvalidWork
from workflow.work import Work, parse_work

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from workflow.client import Client

#: The parameter that carries the file's absolute path.
PATH_PARAMETER = "path"
#: Replaced by the file's absolute path in a command (else the path is its last argument).
PATH_PLACEHOLDER = "{path}"
#: How the ids of watched files begin.
ID_PREFIX = "file-"
#: Name endings of files still being written: partial downloads, temporary files, backups.
TEMPORARY_ENDINGS = (".tmp", ".part", "~")
#: Events of reads (a runner opening the file), which change nothing.
_READS = frozenset({"opened", "closed_no_write"})


class Stamp(NamedTuple):
    """What tells a file's versions apart: its size and modification time."""

    size: int
    mtime_ns: int


def stamp_of(path: Path) -> Stamp | None:
    """``path``'s stamp; None when it is gone or is no regular file."""
    try:
        found = path.stat()
    except OSError:
        return None
    return Stamp(found.st_size, found.st_mtime_ns) if stat.S_ISREG(found.st_mode) else None


def file_id(pipeline: str, path: Path, stamp: Stamp) -> str:
    """The id of ``pipeline``'s work for ``path`` as ``stamp`` says it is: the same for
    the same file as long as it does not change (and fits ``workflow.work.ID_PATTERN``).
    The pipeline is part of it, so two watchers of one folder may feed two pipelines."""
    key = b"\0".join((pipeline.encode(), os.fsencode(path), b"%d" % stamp.size,
                      b"%d" % stamp.mtime_ns))  # fmt: skip
    return ID_PREFIX + hashlib.sha256(key).hexdigest()[:40]


def _temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMPORARY_ENDINGS)


@dataclass(frozen=True)
class Selection:
    """Which files below the folder are watched: those whose path below it matches one of
    ``patterns`` (globs matched from the right, as ``PurePath.match`` does: ``*.h5``
    matches the name, ``scan*/*.h5`` the name and its folder).

    Hidden and temporary files (a name or folder that starts with ``.`` or ends with
    ``.tmp``, ``.part`` or ``~``) are left out unless the pattern that matches them is
    written that way itself (``.*.h5``, ``*.part``): a detector's half-written files and
    a file server's ``.snapshot`` folders are not data.
    """

    patterns: tuple[str, ...] = ("*",)

    def wanted(self, below: PurePath) -> bool:
        """Whether the file at ``below`` (relative to the folder) is watched."""
        try:
            str(below).encode()
        except UnicodeEncodeError:  # a name that is no text cannot travel in JSON
            return False
        hidden = any(_temporary(part) for part in below.parts)
        return any(below.match(pattern) and (not hidden or self._explicit(pattern))
                   for pattern in self.patterns)  # fmt: skip

    def enters(self, folder_name: str) -> bool:
        """Whether a scan looks into a subfolder of this name."""
        return not _temporary(folder_name) or any(map(self._explicit, self.patterns))

    @staticmethod
    def _explicit(pattern: str) -> bool:
        return any(_temporary(part) for part in PurePath(pattern).parts)


class Settling:
    """The files looked at, until each is complete: its stamp unchanged for ``settle``
    seconds. A file is reported complete once per stamp.

    Args:
        settle: Seconds a file's stamp must stay the same.
        clock: Monotonic seconds (for tests).
    """

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic):
        self.settle = settle
        self._clock = clock
        self._pending: dict[Path, tuple[Stamp | None, float]] = {}
        self._reported: dict[Path, Stamp] = {}

    def look_at(self, path: Path) -> None:
        """Watch ``path`` until it is complete (again: it may have changed)."""
        self._pending.setdefault(path, (None, self._clock()))

    def newly_complete(self) -> list[tuple[Path, Stamp]]:
        """The files complete since the last call, each with its stamp; files that are
        gone are forgotten."""
        now = self._clock()
        complete = []
        for path, (seen, since) in list(self._pending.items()):
            stamp = stamp_of(path)
            if stamp is None:
                del self._pending[path]
                self._reported.pop(path, None)
            elif stamp != seen:  # new, or changed since the last look: the clock restarts
                self._pending[path] = (stamp, now)
            elif now - since >= self.settle:
                del self._pending[path]
                if self._reported.get(path) != stamp:
                    self._reported[path] = stamp
                    complete.append((path, stamp))
        return complete


class _Events(FileSystemEventHandler):
    """Hands the paths the file system's events name to the watcher's loop (None: events
    were lost, look at everything again)."""

    def __init__(self, paths: queue.SimpleQueue[Path | None]):
        self._paths = paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind == "events_lost":
            self._paths.put(None)
        elif event.is_directory:  # a folder made or moved in: its files
            if kind in ("created", "moved"):
                self._paths.put(Path(os.fsdecode(event.dest_path or event.src_path)))
        elif kind not in _READS:  # moved: the old name is gone, the new one is new
            for name in (event.src_path, event.dest_path):
                if name:
                    self._paths.put(Path(os.fsdecode(name)))


@dataclass(frozen=True)
class Deposit:
    """A complete file's work: deposited now (``new``), or by an earlier watcher."""

    id: str
    path: Path
    new: bool


class Watcher:
    """Deposits one work per new, complete file below ``folder``.

    Entering it (``with``) starts watching the file system and looks at the files there
    already; ``deposits()`` then deposits each file once it is complete. Leaving stops
    the watching.

    Args:
        client: Where the works go.
        folder: The folder to watch.
        work: The fields of every work (``pipeline``, ``function``, ``command`` or
            ``graph``, ``parameters``, ...); each gets its id and the parameter
            ``path``, and a command the path as an argument.
        selection: Which files are watched.
        settle: Seconds a file's size and modification time must stay the same.
        recursive: Watch the subfolders too.
        polling: Look at the folder every second instead of waiting for the kernel's
            notifications (network file systems send none for other hosts' writes).

    Raises:
        InvalidWork: ``folder`` is no directory, or ``work`` is no valid work.
    """

    def __init__(self, client: Client, folder: str | Path, work: dict[str, Any], *,
                 selection: Selection | None = None, settle: float = 2.0,
                 recursive: bool = False, polling: bool = False):  # fmt: skip
        self.folder = Path(os.path.abspath(folder))
        if not self.folder.is_dir():
            reason = "not a directory" if self.folder.exists() else "no such directory"
            raise InvalidWork(f"cannot watch {folder}: {reason}", field="DIR")
        parse_work(work)  # a bad field fails now, not at the first file
        self.client = client
        self.work = work
        self.selection = selection or Selection()
        self.recursive = recursive
        self._settling = Settling(settle)
        self._paths: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._observer: BaseObserver = PollingObserver() if polling else Observer()
        self._observer.schedule(_Events(self._paths), str(self.folder), recursive=recursive)

    @property
    def tick(self) -> float:
        """Seconds between two looks at the files not yet complete."""
        return min(max(self._settling.settle / 4, 0.05), 1.0)

    def __enter__(self) -> Watcher:
        try:
            self._observer.start()
        except OSError as exc:  # e.g. the inotify watch limit
            raise ConfigurationError(f"cannot watch {self.folder}: "
                                     f"{exc.strerror or exc} (try --polling)") from None
        # The files there already, looked for once the events flow: none is missed.
        self._scan(self.folder)
        return self

    def __exit__(self, *exc: object) -> None:
        self._observer.stop()
        self._observer.join()

    def deposits(self) -> Iterator[Deposit]:
        """Each complete file's work as it is deposited, or found deposited, forever.

        Raises:
            InvalidWork: the folder is gone.
            WorkflowError: the server refuses a work, or cannot be reached (the client
                retries for its ``retry_for`` seconds first).
        """
        while True:
            time.sleep(self.tick)
            self._take_events()
            for path, stamp in self._settling.newly_complete():
                yield self._deposit(path, stamp)
            if not self.folder.is_dir():
                raise InvalidWork(f"the watched folder {self.folder} is gone", field="DIR")

    def work_for(self, path: Path, id: str) -> Work:
        """The work for the file at ``path``, with ``id``."""
        raw = {**self.work, "id": id,
               "parameters": {**(self.work.get("parameters") or {}), PATH_PARAMETER: str(path)}}
        if raw.get("command"):
            raw["command"] = _with_path(raw["command"], str(path))
        return parse_work(raw)

    def _take_events(self) -> None:
        while True:
            try:
                path = self._paths.get_nowait()
            except queue.Empty:
                return
            if path is None:
                self._scan(self.folder)
            elif path.is_dir():
                self._scan(path)
            else:
                self._consider(path)

    def _scan(self, top: Path) -> None:
        if top != self.folder and not self.recursive:
            return
        for root, folders, names in os.walk(top):
            folders[:] = [f for f in folders if self.recursive and self.selection.enters(f)]
            for name in names:
                self._consider(Path(root, name))

    def _consider(self, path: Path) -> None:
        try:
            below = path.relative_to(self.folder)
        except ValueError:
            return
        if self.selection.wanted(below):
            self._settling.look_at(path)

    def _deposit(self, path: Path, stamp: Stamp) -> Deposit:
        id = file_id(self.work["pipeline"], path, stamp)
        try:
            self.client.deposit([self.work_for(path, id)])
        except DuplicateWork:
            # The id is taken: this file, as it is now, was deposited before. The server
            # refuses the second deposit because it differs, if only in its creation time.
            return Deposit(id, path, new=False)
        return Deposit(id, path, new=True)


def _with_path(command: Sequence[str], path: str) -> list[str]:
    """``command`` with ``{path}`` replaced by ``path``; without one, ``path`` appended."""
    if any(PATH_PLACEHOLDER in arg for arg in command):
        return [arg.replace(PATH_PLACEHOLDER, path) for arg in command]
    return [*command, path]
