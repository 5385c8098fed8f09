"""Products and plots into the archive, as each work's ``config.archive`` says.

``copy`` and ``move`` put each file under ``ROOT/YYYYMMDD/PIPELINE/ID/`` (the date of
the work's creation) and record the new path; ``delete`` removes the file and its entry;
``bypass`` leaves both alone. A path is never written outside ``ROOT``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from workflow.wire import Outcome
from workflow.work import Work


def destination(root: Path, work: Work) -> Path:
    """The archive directory of ``work``; inside ``root`` (pipeline and id are checked
    names without path separators)."""
    day = dt.datetime.fromtimestamp(work.creation or 0, dt.UTC).strftime("%Y%m%d")
    place = (root / day / work.pipeline / str(work.id)).resolve()
    if not place.is_relative_to(root.resolve()):
        raise ValueError(f"{place} is outside the archive {root}")
    return place


def _free_name(folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    while candidate.exists():
        candidate = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return candidate


def archive_outcome(work: Work | dict[str, Any], outcome: Outcome, root: Path) -> None:
    """Apply the work's archive strategies to the products and plots of ``outcome``.

    Files that cannot be archived keep their path and are listed in
    ``results["archive_errors"]``; archiving never changes the attempt's status.
    """
    if not outcome.products and not outcome.plots:
        return
    if isinstance(work, dict):
        work = Work.model_validate(work)
    problems: list[str] = []
    for kind in ("products", "plots"):
        paths: list[str] | None = getattr(outcome, kind)
        strategy = getattr(work.config.archive, kind)
        if not paths or strategy == "bypass":
            continue
        kept: list[str] = []
        for raw in paths:
            source = Path(raw)
            try:
                if strategy == "delete":
                    source.unlink()
                    continue
                folder = destination(root, work)
                folder.mkdir(parents=True, exist_ok=True)
                target = _free_name(folder, source.name)
                if strategy == "move":
                    shutil.move(source, target)
                else:
                    shutil.copy2(source, target)
                kept.append(str(target))
            except (OSError, ValueError) as exc:
                problems.append(f"{kind} {raw}: {exc}")
                kept.append(raw)
        setattr(outcome, kind, kept)
    if problems:
        outcome.results = {**(outcome.results or {}), "archive_errors": problems}


def archive_log(work: dict[str, Any], path: str, start: int, end: int, root: Path) -> str | None:
    """Copy bytes ``start`` to ``end`` of the file ``path`` (what attempt
    ``work["attempt"]`` wrote) into the archive as ``log-N.txt``, as
    ``config.archive.logs`` says (``move`` or ``copy``; ``delete`` and ``bypass`` keep
    nothing); its path there, or None."""
    model = Work.model_validate(work)
    if model.config.archive.logs not in ("move", "copy"):
        return None
    try:
        folder = destination(root, model)
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, f"log-{model.attempt}.txt")
        with open(path, "rb") as source, open(target, "wb") as copy:
            source.seek(start)
            left = end - start
            while left > 0 and (data := source.read(min(left, 1 << 20))):
                copy.write(data)
                left -= len(data)
    except (OSError, ValueError):
        return None  # the log still has its end in the store
    return str(target)
