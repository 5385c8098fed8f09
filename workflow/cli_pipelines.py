"""``workflow pipelines ...``: deploy pipeline configurations (CHIME's v2 YAML) and
follow, cancel and retry their runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.table import Table

from workflow import views
from workflow.cli_connect import connect

if TYPE_CHECKING:
    from workflow.client import Client

Doc = dict[str, Any]

as_json_option = click.option("--json", "as_json", is_flag=True,
                              help="Print JSON instead of a table.")  # fmt: skip
STATUSES = ("running", "success", "failure", "cancelled")


@click.command()
@click.argument("file", type=click.File("r"))
@connect
@click.pass_obj
def deploy(client: Client, file: Any) -> None:
    """Deploy the pipeline configuration in FILE (YAML; - reads standard input) and
    print the new run's id."""
    try:
        config = yaml.safe_load(file)
    except yaml.YAMLError as exc:
        click.echo(f"error: {file.name} is not YAML: {str(exc).splitlines()[0]}", err=True)
        sys.exit(2)
    run = client.deploy_pipeline(config if isinstance(config, dict) else {"config": config})
    click.echo(run["id"])
    if run.get("kind") == "schedule":
        click.echo(f"scheduled: {run['cronspec']} ({run['timezone']}), next at "
                   f"{views.when(run['next_time'])}", err=True)  # fmt: skip


@click.command("ls")
@click.option("--name", help="Only runs of this configuration.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only runs of this status, repeatable.")  # fmt: skip
@click.option("--limit", default=50, type=click.IntRange(1, 1000), help="Runs to show.")
@as_json_option
@connect
@click.pass_obj
def ls(client: Client, name: str | None, statuses: tuple[str, ...], limit: int,
       as_json: bool) -> None:  # fmt: skip
    """Pipeline runs, newest first: status, stage, steps done."""
    runs = client.pipeline_runs(status=statuses, name=name, limit=limit)
    table = listing(runs, as_json, "no pipeline run: deploy one with `workflow pipelines deploy "
                    "FILE`", "Pipeline runs", ("id", "name", "status", "stage", "steps",
                                               "started", "by"))  # fmt: skip
    if table is None:
        return
    for run in runs:
        steps = run["steps"]
        ended = sum(step["status"] in ("success", "failure", "skipped") for step in steps)
        table.add_row(run["id"], run["name"], views.status_text(run["status"]),
                      str(run.get("current_stage")), f"{ended}/{len(steps)}",
                      views.when(run.get("start")), run.get("user") or "")  # fmt: skip
    views.show(table)


def said(found: list[Any], as_json: bool, empty: str) -> bool:
    """Print ``found`` as JSON, or ``empty`` when there is nothing; whether it did."""
    if as_json:
        click.echo(views.json_text(found))
    elif not found:
        click.echo(empty)
    return as_json or not found


def listing(found: list[Any], as_json: bool, empty: str, title: str, columns: tuple[str, ...]
            ) -> Table | None:  # fmt: skip
    """A table of ``columns`` to fill with ``found``; None when ``said`` printed it all
    (JSON, or ``empty``)."""
    if said(found, as_json, empty):
        return None
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


@click.command()
@click.argument("id")
@as_json_option
@connect
@click.pass_obj
def show(client: Client, id: str, as_json: bool) -> None:
    """One run: each step's stage, status, works and why it ended as it did."""
    run = client.pipeline_run(id)
    if as_json:
        click.echo(views.json_text(run))
        return
    table = Table(title=f"{run['name']} {run['id']}: {run['status']}, stage "
                        f"{run.get('current_stage')}")  # fmt: skip
    for column in ("step", "stage", "status", "works", "succeeded", "why"):
        table.add_column(column)
    for step in run["steps"]:
        table.add_row(step["name"], str(step["stage"]), views.status_text(step["status"]),
                      ", ".join(step["works"][:3]) + (" …" if len(step["works"]) > 3 else ""),
                      f"{step['succeeded']}/{len(step['works'])}", step.get("reason") or "")
    views.show(table)


def _acting(action: str, help: str, call: Callable[[Client, str], Doc],
            said: Callable[[Doc], str]) -> click.Command:  # fmt: skip
    """A command ``action ID`` that calls ``call`` and prints ``said`` of its answer."""

    @click.command(action, help=help)
    @click.argument("id")
    @connect
    @click.pass_obj
    def act(client: Client, id: str) -> None:
        click.echo(said(call(client, id)))

    return act


def _run_line(run: Doc) -> str:
    return f"{run['id']}: {run['status']}, stage {run.get('current_stage')}"


def _schedule_line(doc: Doc) -> str:
    return f"{doc['id']}: {doc['status']}, next at {views.when(doc.get('next_time'))}"


cancel = _acting("cancel", "Cancel a running run and its queued and running works.",
                 lambda client, id: client.cancel_pipeline(id), _run_line)
retry = _acting("retry", "Run the failed steps of an ended run again (new works), and "
                "what follows them.", lambda client, id: client.retry_pipeline(id), _run_line)
COMMANDS = [deploy, ls, show, cancel, retry]


@click.command("ls")
@as_json_option
@connect
@click.pass_obj
def schedules_ls(client: Client, as_json: bool) -> None:
    """Schedules: status, cron, lives left, runs spawned, next time."""
    found = client.schedules()
    table = listing(found, as_json, "no schedule: deploy a configuration with a schedule: "
                    "section", "Schedules", ("id", "name", "status", "cron", "lives", "spawned",
                                             "next"))  # fmt: skip
    if table is None:
        return
    for doc in found:
        table.add_row(doc["id"], doc["name"], views.status_text(doc["status"]),
                      f"{doc['cronspec']} ({doc['timezone']})",
                      "forever" if doc["lives"] == -1 else str(doc["lives"]),
                      str(doc["has_spawned"]), views.when(doc.get("next_time")))  # fmt: skip
    views.show(table)


@click.command("rm")
@click.argument("id")
@connect
@click.pass_obj
def schedules_rm(client: Client, id: str) -> None:
    """Remove schedule ID (the runs it spawned stay)."""
    if not client.remove_schedule(id):
        click.echo(f"error: no schedule {id}", err=True)
        sys.exit(1)
    click.echo(f"{id}: removed")


SCHEDULE_COMMANDS = [
    schedules_ls,
    _acting("pause", "Spawn nothing until resumed.",
            lambda client, id: client.schedule(id, "pause"), _schedule_line),
    _acting("resume", "Spawn again; the next time counts from now.",
            lambda client, id: client.schedule(id, "resume"), _schedule_line),
    schedules_rm,
]  # fmt: skip
