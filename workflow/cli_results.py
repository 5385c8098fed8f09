"""``workflow results ...``: search finished work, show one work with its history.

Each command finds its ``Client`` in ``ctx.obj`` (made from ``--url`` and ``--token``, given
before or after the command's name).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from workflow import views, wire
from workflow.cli_buckets import confirmed
from workflow.cli_connect import connect
from workflow.wire import MAX_PAGE, SORT_FIELDS
from workflow.work import Work

if TYPE_CHECKING:
    from workflow.client import Client

as_json_option = click.option("--json", "as_json", is_flag=True,
                              help="Print JSON instead of a table.")  # fmt: skip

AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class When(click.ParamType):
    """A moment: unix seconds, an ISO date or datetime (local time unless it names a
    zone), or an age such as ``30m``, ``2h``, ``3d``, ``1w`` (that long ago)."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> float:  # fmt: skip
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        if match := AGO.match(text):
            return time.time() - float(match[1]) * UNIT_SECONDS[match[2]]
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(text).timestamp()
        except ValueError:
            self.fail(f"{value!r} is not unix seconds, an ISO date or datetime, "
                      "or an age like 30m, 2h, 3d", param, ctx)  # fmt: skip


def search_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that narrow a results search."""
    options = [
        click.option("--pipeline", "pipelines", multiple=True, help="Any of these, repeatable."),
        click.option("--status", "statuses", multiple=True,
                     type=click.Choice(["success", "failure", "cancelled"]),
                     help="Any of these, repeatable."),
        click.option("--tag", "tags", multiple=True,
                     help="Carrying any of these tags, repeatable."),
        click.option("--event", "events", multiple=True, type=int, help="Any of these events."),
        click.option("--site", help="Only this site."),
        click.option("--user", help="Only this user."),
        click.option("--since", type=When(), help="Created at or after WHEN: unix seconds, an "
                     "ISO date or datetime, or an age such as 30m, 2h, 3d."),
        click.option("--until", type=When(), help="Created before WHEN."),
        click.option("--text", help="Words that must all appear in parameters, results, tags "
                     "or error messages."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _plain(pipelines: tuple[str, ...], statuses: tuple[str, ...], tags: tuple[str, ...],
           events: tuple[int, ...]) -> dict[str, list[Any]]:  # fmt: skip
    return {"pipeline": list(pipelines), "status": list(statuses), "tags": list(tags),
            "event": list(events)}  # fmt: skip


@click.command()
@search_filters
@click.option("--sort", default="creation", type=click.Choice(sorted(SORT_FIELDS)))
@click.option("--order", default="desc", type=click.Choice(["asc", "desc"]))
@click.option("--skip", default=0, type=click.IntRange(min=0), help="Matches to skip.")
@click.option("--limit", default=50, type=click.IntRange(0, MAX_PAGE), help="Works to show.")
@as_json_option
@connect
@click.pass_obj
def search(client: Client, pipelines: tuple[str, ...], statuses: tuple[str, ...],
           tags: tuple[str, ...], events: tuple[int, ...], as_json: bool,
           **filters: Any) -> None:  # fmt: skip
    """Search finished works; every option narrows the search."""
    found, total = client.search(wire.search(**_plain(pipelines, statuses, tags, events),
                                             **filters))  # fmt: skip
    if as_json:
        page = {"total": total, "skip": filters["skip"], "limit": filters["limit"],
                "items": found}  # fmt: skip
        click.echo(views.json_text(page))
        return
    start = f", from match {filters['skip'] + 1}" if filters["skip"] else ""
    title = f"{len(found)} of {total} results{start}"
    views.show(views.results_table(map(Work.model_validate, found), title))


@click.command()
@click.argument("id")
@as_json_option
@connect
@click.pass_obj
def show(client: Client, id: str, as_json: bool) -> None:
    """One work with every field and its history.

    The work may be queued, running or finished.
    """
    work = client.get(id)
    if as_json:
        click.echo(views.json_text(work))
    else:
        views.show(views.work_view(Work.model_validate(work)))


@click.command()
@as_json_option
@connect
@click.pass_obj
def counts(client: Client, as_json: bool) -> None:
    """Works per pipeline and status, in the buckets and the results."""
    tally = client.counts()
    if as_json:
        click.echo(views.json_text(tally))
    else:
        views.show(views.counts_table(tally))


@click.command()
@search_filters
@click.option("--from-failure", is_flag=True,
              help="Graph works reuse what their nodes gave (kept in the archive): only the "
              "nodes that failed, and what lies downstream of them, run again.")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@connect
@click.pass_obj
def retry(client: Client, pipelines: tuple[str, ...], statuses: tuple[str, ...],
          tags: tuple[str, ...], events: tuple[int, ...], from_failure: bool, yes: bool,
          **filters: Any) -> None:  # fmt: skip
    """Queue again every finished work the options match, each as a new work linked to
    it, after confirming their number."""
    search = wire.search(**_plain(pipelines, statuses, tags, events), **filters)
    confirmed(lambda n: client.retry_matching(search, confirm=n, from_failure=from_failure),
              "retry", yes)  # fmt: skip


COMMANDS = [search, show, counts, retry]
