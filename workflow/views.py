"""Rich renderings of works, buckets and pipelines for the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from workflow.history import ActionEntry, AttemptEntry, DeliveryEntry
from workflow.wire import PipelineSettings
from workflow.work import Work

STATUS_STYLE = {"success": "green", "failure": "red", "cancelled": "yellow",
                "running": "cyan", "queued": "white"}  # fmt: skip
OUTCOME_STYLE = {**STATUS_STYLE, "lost": "red", "released": "cyan", "retry": "cyan"}
#: Statuses in the order the count tables show them.
COUNTED = ("queued", "running", "success", "failure", "cancelled")
#: Lines of a failed attempt's traceback that ``work_view`` shows.
TRACEBACK_LINES = 20
#: Widest output measured for a pipe or a file: nothing real comes near it.
UNLIMITED = 100_000


def show(renderable: RenderableType) -> None:
    """Print ``renderable`` to stdout: on a terminal as wide as it is, elsewhere (a pipe, a
    file) as wide as the renderable needs, so no id or header is cut to 80 columns."""
    console = Console()
    if not console.is_terminal:
        wide = console.options.update_width(UNLIMITED)
        needed = console.measure(renderable, options=wide).maximum
        console = Console(width=max(needed, console.width))
    console.print(renderable)


def when(stamp: float | None) -> str:
    """A unix time as local ``YYYY-mm-dd HH:MM:SS``, or empty."""
    if stamp is None:
        return ""
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def clock(stamp: float | None, day_of: float | None) -> str:
    """``HH:MM:SS`` when ``stamp`` falls on the same day as ``day_of``, else ``when``."""
    if stamp is None or day_of is None or when(stamp)[:10] != when(day_of)[:10]:
        return when(stamp)
    return when(stamp)[11:]


def age(stamp: float | None, now: float | None = None) -> str:
    """How long ago ``stamp`` was, in the largest whole unit: ``42s``, ``5m``, ``3h``, ``2d``."""
    if stamp is None:
        return ""
    seconds = max(0.0, (time.time() if now is None else now) - stamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def short(value: Any, width: int = 48) -> str:
    """``value`` as compact JSON cut to ``width`` characters."""
    text = json.dumps(value, separators=(",", ":"), default=str) if value is not None else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def json_text(data: Any) -> str:
    """``data`` as indented JSON, for ``--json`` output."""
    return json.dumps(data, indent=2, default=str)


def status_text(status: str, styles: dict[str, str] = STATUS_STYLE) -> Text:
    """A status in its colour."""
    return Text(status, style=styles.get(status, ""))


def results_table(works: Iterable[Work], title: str) -> Table:
    """A table of finished works: id, pipeline, status, attempts, finished, results."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "pipeline", "status", "attempt", "finished", "results"):
        table.add_column(column, no_wrap=column != "results")
    for work in works:
        table.add_row(work.id, work.pipeline, status_text(work.status), str(work.attempt),
                      when(work.stop), Text(short(work.results)))  # fmt: skip
    return table


def defaults_text(defaults: dict[str, Any]) -> str:
    """Pipeline defaults that are set, as ``name=value`` words."""
    return " ".join(f"{k}={_compact(v)}" for k, v in defaults.items() if v is not None)


def _compact(value: Any) -> str:
    """A value in one short line: JSON without the nulls of a nested object."""
    def bare(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: bare(x) for k, x in v.items() if x is not None and bare(x) != {}}
        return [bare(x) for x in v] if isinstance(v, list) else v

    return json.dumps(bare(value), separators=(",", ":")) if isinstance(value, dict | list) \
        else str(value)  # fmt: skip


def pipelines_table(pipelines: Iterable[dict[str, Any]]) -> Table:
    """One row per pipeline (as ``GET /buckets/pipelines`` lists them): counts, paused,
    defaults."""
    table = Table(title="pipelines", title_justify="left")
    table.add_column("pipeline", no_wrap=True)
    for status in COUNTED:
        table.add_column(status, justify="right", style=STATUS_STYLE[status])
    table.add_column("paused")
    table.add_column("defaults")
    for row in pipelines:
        counts = row.get("counts", {})
        table.add_row(Text(row["name"]), *(str(counts.get(s, 0)) for s in COUNTED),
                      Text("paused", style="bold red") if row.get("paused") else "",
                      defaults_text(row.get("defaults", {})))  # fmt: skip
    return table


RUNNER_STYLE = {"online": "green", "offline": "red", "stopped": "white"}


def runners_table(runners: Iterable[dict[str, Any]]) -> Table:
    """One row per runner (as ``GET /buckets/runners`` lists them): state, what it
    takes, what it holds, its attempts."""
    table = Table(title="runners", title_justify="left")
    for name in ("runner", "state", "last seen", "host", "takes", "holds", "done", "failed"):
        table.add_column(name, no_wrap=name in ("runner", "state"),
                         justify="right" if name in ("holds", "done", "failed") else "left")
    for row in runners:
        takes = ", ".join(row.get("pipelines") or []) or "every pipeline"
        if row.get("site"):
            takes += f"; site {row['site']}"
        if row.get("tags"):
            takes += f"; tags {', '.join(row['tags'])}"
        held = [work["id"] for work in row.get("works", [])[:3]]
        holds = str(row.get("holding", 0)) + (f" ({', '.join(held)})" if held else "")
        table.add_row(Text(str(row.get("name") or row["id"])),
                      Text(row["state"], style=RUNNER_STYLE.get(row["state"], "")),
                      f"{age(row.get('last_seen'))} ago", Text(str(row.get("host") or "")),
                      Text(takes), Text(holds), str(row.get("done", 0)),
                      str(row.get("failed", 0)))  # fmt: skip
    return table


def counts_table(counts: dict[str, dict[str, int]]) -> Table:
    """Works per pipeline and status, with totals."""
    table = Table(title="works per pipeline and status", title_justify="left",
                  show_footer=len(counts) > 1)  # fmt: skip
    table.add_column("pipeline", footer="all", no_wrap=True)
    for status in COUNTED:
        total = sum(per.get(status, 0) for per in counts.values())
        table.add_column(status, footer=str(total), justify="right", style=STATUS_STYLE[status])
    table.add_column("total", footer=str(sum(sum(p.values()) for p in counts.values())),
                     justify="right")  # fmt: skip
    for pipeline, per in sorted(counts.items()):
        table.add_row(Text(pipeline), *(str(per.get(s, 0)) for s in COUNTED),
                      str(sum(per.values())))  # fmt: skip
    return table


def settings_table(pipeline: str, settings: PipelineSettings) -> Table:
    """A pipeline's defaults for new deposits, whether it is paused, and its last five
    changes with who made them, newest first."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_row("pipeline", Text(pipeline, style="bold"))
    table.add_row("paused", "yes" if settings.paused else "no")
    for name, value in settings.defaults.model_dump(mode="json").items():
        table.add_row(name, "(server default)" if value is None else _compact(value))
    for n, change in enumerate(reversed(settings.history[-5:])):
        what = f"{change.action} by {change.by or 'someone unknown'}, {when(change.at)}"
        if change.action == "configure" and change.changes:
            what += f": {json.dumps(change.changes, separators=(',', ':'))}"
        table.add_row("changed" if n == 0 else "", what)
    return table


def holder(work: Work) -> str:
    """``runner@host`` of a running work's lease, or empty."""
    if work.lease is None:
        return ""
    return f"{work.lease.runner or '?'}@{work.lease.host or '?'}"


def bucket_table(works: Iterable[Work], title: str) -> Table:
    """Works in a bucket: id, status, priority, attempt, age, lease holder, parameters."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "status", "priority", "attempt", "age", "runner@host"):
        table.add_column(column, no_wrap=True)
    table.add_column("parameters")
    now = time.time()
    for work in works:
        table.add_row(work.id, status_text(work.status), str(work.priority),
                      f"{work.attempt}/{work.max_attempts}", age(work.creation, now),
                      Text(holder(work)), Text(short(work.parameters, 60)))  # fmt: skip
    return table


def work_view(work: Work) -> RenderableType:
    """Everything about one work: its fields, parameters and results, and its history."""
    parts: list[RenderableType] = [
        Panel(_fields(work), title=f"work {work.id}", title_align="left", expand=False)
    ]
    attempts = [e for e in work.history if isinstance(e, AttemptEntry)]
    actions = [e for e in work.history if isinstance(e, ActionEntry)]
    parts.append(_attempts_table(attempts) if attempts else Text("no attempts yet", "dim"))
    if actions:
        parts.append(_actions_table(actions))
    deliveries = [e for e in work.history if isinstance(e, DeliveryEntry)]
    if deliveries:
        parts.append(_deliveries_table(deliveries))
    for entry in attempts:
        if entry.error and entry.error.traceback:
            tail = entry.error.traceback.rstrip().splitlines()[-TRACEBACK_LINES:]
            parts.append(Rule(f"attempt {entry.attempt} traceback (last lines)", align="left"))
            parts.append(Text("\n".join(f"  {line}" for line in tail)))
    return Group(*parts)


def _fields(work: Work) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    rows: list[tuple[str, RenderableType | str | None]] = [
        ("pipeline", Text(work.pipeline, style="bold")),
        ("status", status_text(work.status)),
        ("attempt", f"{work.attempt} of at most {work.max_attempts} (retries {work.retries})"),
        ("priority", str(work.priority)),
        ("site / user", Text(f"{work.site} / {work.user}")),
        ("function", Text(work.function) if work.function else None),
        ("command", Text(shlex.join(work.command)) if work.command else None),
        ("tags", Text(", ".join(work.tags)) if work.tags else None),
        ("event", ", ".join(map(str, work.event)) if work.event else None),
        ("created", when(work.creation)),
        ("started", when(work.start) or None),
        ("stopped", when(work.stop) or None),
        ("timeout", f"{work.timeout} s"),
        ("backoff", f"{work.backoff:g} s" if work.backoff is not None else None),
        ("not before", when(work.not_before) or None),
        ("lease", _lease(work)),
        ("parameters", JSON.from_data(work.parameters) if work.parameters else None),
        ("results", JSON.from_data(work.results) if work.results else None),
        ("products", Text("\n".join(work.products)) if work.products else None),
        ("plots", Text("\n".join(work.plots)) if work.plots else None),
        ("config", _changed(work.config.model_dump(mode="json", exclude_defaults=True))),
        ("notify", _changed(work.notify.model_dump(mode="json", exclude_defaults=True))),
    ]
    for name, value in rows:
        if value is not None:
            grid.add_row(name, value)
    return grid


def _changed(values: dict[str, Any]) -> RenderableType:
    return JSON.from_data(values) if values else Text("defaults", style="dim")


def _lease(work: Work) -> str | None:
    if work.lease is None:
        return None
    return f"{holder(work)}, claimed {when(work.lease.claimed)}, expires {when(work.lease.expires)}"


def _attempts_table(entries: list[AttemptEntry]) -> Table:
    table = Table(title="attempts", title_justify="left")
    for column in ("#", "outcome", "reason", "runner@host", "claimed", "started", "stopped"):
        table.add_column(column, no_wrap=True)
    table.add_column("error")
    for entry in entries:
        error = entry.error
        message = ": ".join(p for p in (error.type, error.message) if p) if error else ""
        who = f"{entry.runner or '?'}@{entry.host or '?'}" if entry.runner or entry.host else ""
        table.add_row(str(entry.attempt), status_text(entry.outcome, OUTCOME_STYLE),
                      Text(entry.reason or ""), Text(who), when(entry.claimed),
                      clock(entry.started, entry.claimed), clock(entry.stopped, entry.claimed),
                      Text(message))  # fmt: skip
    return table


def _actions_table(entries: list[ActionEntry]) -> Table:
    table = Table(title="operator actions", title_justify="left")
    for column in ("at", "action", "by", "changes"):
        table.add_column(column, no_wrap=column != "changes")
    for entry in entries:
        changes = defaults_text(entry.changes or {})
        table.add_row(when(entry.at), entry.action, Text(entry.by or ""), Text(changes))
    return table


def _deliveries_table(entries: list[DeliveryEntry]) -> Table:
    table = Table(title="notifications", title_justify="left")
    for column in ("at", "target", "event", "outcome", "tries", "key"):
        table.add_column(column, no_wrap=True)
    for entry in entries:
        outcome = Text(entry.outcome, style="green" if entry.outcome == "delivered" else "red")
        if entry.detail:
            outcome.append(f": {entry.detail}", style="")
        table.add_row(when(entry.at), entry.target, entry.event, outcome, str(entry.tries),
                      Text(entry.key))  # fmt: skip
    return table
