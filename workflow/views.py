"""Rich renderings of works for the CLI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from rich.table import Table

from workflow.work import Work

STATUS_STYLE = {"success": "green", "failure": "red", "cancelled": "yellow",
                "running": "cyan", "queued": "white"}  # fmt: skip


def when(stamp: float | None) -> str:
    """A unix time as local ``YYYY-mm-dd HH:MM:SS``, or empty."""
    if stamp is None:
        return ""
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def short(value: Any, width: int = 48) -> str:
    """``value`` as compact JSON cut to ``width`` characters."""
    text = json.dumps(value, separators=(",", ":"), default=str) if value is not None else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def results_table(works: Iterable[Work], title: str) -> Table:
    """A table of finished works: id, pipeline, status, attempts, finished, results."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "pipeline", "status", "attempt", "finished", "results"):
        table.add_column(column, no_wrap=column != "results")
    for work in works:
        style = STATUS_STYLE.get(work.status, "")
        table.add_row(work.id, work.pipeline, f"[{style}]{work.status}[/]", str(work.attempt),
                      when(work.stop), short(work.results))  # fmt: skip
    return table
