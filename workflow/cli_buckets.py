"""``workflow buckets ...``: look into and steer the buckets of queued and running work.

Each command finds its ``Client`` in ``ctx.obj`` (made from ``--url`` and ``--token``, given
before or after the command's name).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from workflow import views
from workflow.cli_connect import connect
from workflow.wire import Bulk, BulkFilter, BulkReply
from workflow.work import Work

if TYPE_CHECKING:
    from workflow.client import Client

as_json_option = click.option("--json", "as_json", is_flag=True,
                              help="Print JSON instead of a table.")  # fmt: skip


@click.command("ls")
@as_json_option
@connect
@click.pass_obj
def ls(client: Client, as_json: bool) -> None:
    """One row per pipeline: works per status, paused, defaults."""
    pipelines = client.pipelines()
    if as_json:
        click.echo(views.json_text(pipelines))
    else:
        views.show(views.pipelines_table(pipelines))


status = click.Command("status", callback=ls.callback, params=ls.params,
                       help="Same as ls.")  # fmt: skip


@click.command()
@click.argument("id")
@as_json_option
@connect
@click.pass_obj
def why(client: Client, id: str, as_json: bool) -> None:
    """Why a queued work is not running, most decisive reason first."""
    answer = client.why(id)
    if as_json:
        click.echo(views.json_text(answer))
    elif answer["status"] != "queued":
        click.echo(f"{id} is {answer['status']}, not queued")
    elif not answer["reasons"]:
        click.echo(f"{id} is queued and next in line: a runner of its pipeline takes it")
    else:
        for reason in answer["reasons"]:
            click.echo(f"{reason['code']}: {reason['message']}")


@click.command()
@as_json_option
@connect
@click.pass_obj
def runners(client: Client, as_json: bool) -> None:
    """The runners: online, offline (not seen for a lease) or stopped, what each takes
    and holds; runners gone for a day are forgotten."""
    found = client.runners()
    if as_json:
        click.echo(views.json_text(found))
    elif not found:
        click.echo("no runner on record: start one with `workflow run PIPELINE`")
    else:
        views.show(views.runners_table(found))


#: Seconds between two looks at a followed log.
FOLLOW_EVERY = 0.5
#: A work in these may write more.
ACTIVE = ("queued", "running")


@click.command()
@click.argument("id")
@click.option("--attempt", type=click.IntRange(1),
              help="That attempt's log.  [default: the latest]")  # fmt: skip
@click.option("-f", "--follow", is_flag=True,
              help="Go on printing what the work writes, through its next attempts, until "
                   "it has finished.")  # fmt: skip
@connect
@click.pass_obj
def logs(client: Client, id: str, attempt: int | None, follow: bool) -> None:
    """What work ID wrote in an attempt: the end of its log that the server keeps
    (WORKFLOW_LOG_LIMIT); the whole log is in the archive, named on stderr."""
    log = client.logs(id, attempt)
    _echo(log["text"])
    while follow and (log["running"] or (attempt is None and log["status"] in ACTIVE)):
        time.sleep(FOLLOW_EVERY)
        if log["running"]:
            log = client.logs(id, log["attempt"], log["written"])
            _echo(log["text"])
            continue
        latest = client.logs(id)  # the attempt ended; the work goes on
        if latest["attempt"] != log["attempt"]:
            _echo(f"--- attempt {latest['attempt']} ---\n{latest['text']}")
        log = latest
    if log["file"] and not follow:
        click.echo(f"the whole log: {log['file']}", err=True)


def _echo(text: str) -> None:
    click.echo(text, nl=False)
    sys.stdout.flush()


@click.command()
@click.argument("pipeline")
@click.option("--status", "statuses", multiple=True, type=click.Choice(["queued", "running"]),
              help="Only works of this status, repeatable.  [default: both]")
@click.option("--limit", default=20, type=click.IntRange(1, 1000), help="Works to show.")
@as_json_option
@connect
@click.pass_obj
def view(client: Client, pipeline: str, statuses: tuple[str, ...], limit: int,
         as_json: bool) -> None:  # fmt: skip
    """The newest works in the bucket of PIPELINE."""
    docs = client.works([pipeline], list(statuses), limit=limit)
    if as_json:
        click.echo(views.json_text(docs))
        return
    counts = client.counts().get(pipeline, {})
    shown = statuses or ("queued", "running")
    total = sum(counts.get(s, 0) for s in shown)
    title = f"{pipeline}: {len(docs)} of {total} {' and '.join(shown)} works, newest first"
    views.show(views.bucket_table([Work.model_validate(d) for d in docs], title))


@click.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@connect
@click.pass_obj
def rm(client: Client, ids: tuple[str, ...], yes: bool) -> None:
    """Delete works from their bucket; they do not go to the results."""
    unique = list(dict.fromkeys(ids))
    if not yes:
        click.confirm(f"Delete {len(unique)} work(s) for good?", abort=True, err=True)
    deleted = client.delete(unique)
    click.echo(f"deleted {deleted} of {len(unique)} works")


def confirmed(act: Callable[[int | None], BulkReply], what: str, yes: bool) -> None:
    """Run a bulk action: ask how many works it touches, confirm that number (unless
    ``yes``), act, and say what was done and skipped."""
    matched = act(None).matched
    if not matched:
        click.echo(f"no works to {what}")
        return
    if not yes:
        click.confirm(f"{what.capitalize()} {matched} work(s)?", abort=True, err=True)
    reply = act(matched)
    click.echo(f"{what}: {reply.done} of {reply.matched} done, {reply.skipped} skipped")
    for reason in reply.reasons:
        click.echo(f"  {reason['id']}: {reason['reason']}", err=True)


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--pipeline", "pipelines", multiple=True,
              help="Instead of IDS: every work of this pipeline, repeatable.")  # fmt: skip
@click.option("--status", "statuses", multiple=True, type=click.Choice(["queued", "running"]),
              help="With --pipeline: only works of this status.  [default: both]")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@connect
@click.pass_obj
def cancel(client: Client, ids: tuple[str, ...], pipelines: tuple[str, ...],
           statuses: tuple[str, ...], yes: bool) -> None:  # fmt: skip
    """Cancel queued or running works; they move to the results.

    Name the works by IDS, or every work of a --pipeline after confirming their number.
    """
    if bool(ids) == bool(pipelines):
        raise click.UsageError("give either IDS or --pipeline")
    if pipelines:
        wanted = BulkFilter(pipeline=list(pipelines), status=list(statuses) or None)  # type: ignore[arg-type]
        confirmed(lambda n: client.bulk(Bulk(action="cancel", filter=wanted, confirm=n)),
                  "cancel", yes)  # fmt: skip
        return
    for id in dict.fromkeys(ids):
        click.echo(f"{client.cancel(id)['id']} cancelled")


@click.command()
@click.argument("id")
@click.argument("priority", type=int)
@connect
@click.pass_obj
def priority(client: Client, id: str, priority: int) -> None:
    """Set the PRIORITY (1 lowest to 5 highest) of a queued work."""
    work = client.change(id, priority=priority)
    click.echo(f"{work['id']} priority {work['priority']}")


@click.command()
@click.argument("id")
@click.argument("retries", type=int)
@connect
@click.pass_obj
def retries(client: Client, id: str, retries: int) -> None:
    """Set the RETRIES (0 to 5) of a queued work."""
    work = client.change(id, retries=retries)
    click.echo(f"{work['id']} retries {work['retries']}")


@click.command()
@click.argument("pipeline")
@connect
@click.pass_obj
def pause(client: Client, pipeline: str) -> None:
    """Hand out no work of PIPELINE until it is resumed.

    Running work carries on; its runners report as usual.
    """
    client.configure(pipeline, {"paused": True})
    click.echo(f"{pipeline} paused")


@click.command()
@click.argument("pipeline")
@connect
@click.pass_obj
def resume(client: Client, pipeline: str) -> None:
    """Hand out work of PIPELINE again."""
    client.configure(pipeline, {"paused": False})
    click.echo(f"{pipeline} resumed")


@click.command()
@click.argument("pipeline")
@click.option("--priority", type=int, help="Priority of new works, 1 to 5.")
@click.option("--retries", type=int, help="Retries of new works, 0 to 5.")
@click.option("--timeout", type=int, help="Timeout of new works, in seconds.")
@click.option("--backoff", type=float, help="Seconds before the first retry (doubling).")
@click.option("--notify", metavar="JSON", help='Whom to tell of what, e.g. \'{"to": [{"target": '
              '"ops", "on": ["failure"]}]}\' (null: nobody).')  # fmt: skip
@as_json_option
@connect
@click.pass_obj
def defaults(client: Client, pipeline: str, as_json: bool, notify: str | None,
             **changes: float | None) -> None:  # fmt: skip
    """Show or set the defaults of PIPELINE for new deposits.

    They apply to deposits that do not set these fields themselves (notify: to those
    whose own notify asks for nothing).
    """
    given: dict[str, Any] = {name: value for name, value in changes.items() if value is not None}
    if notify is not None:
        try:
            given["notify"] = json.loads(notify)
        except ValueError as exc:
            raise click.UsageError(f"--notify: not JSON: {exc}") from None
    if given:
        settings = client.configure(pipeline, {"defaults": given})
    else:
        settings = client.settings(pipeline)
    if as_json:
        click.echo(views.json_text(settings.model_dump()))
    else:
        views.show(views.settings_table(pipeline, settings))


COMMANDS = [ls, status, view, why, rm, cancel, priority, retries, pause, resume, defaults]
