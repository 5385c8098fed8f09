"""The ``workflow`` command. It only parses options and calls library code."""

from __future__ import annotations

import copy
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from workflow import (
    __version__,
    cli_buckets,
    cli_graph,
    cli_notify,
    cli_pipelines,
    cli_results,
    cli_run,
    cli_token,
    cli_watch,
)
from workflow.cli_connect import connect
from workflow.cli_values import fill_work, what_to_run, work_fields
from workflow.errors import InvalidWork, WorkflowError

#: Works per deposit request; bigger deposits are sent in batches with a progress bar.
DEPOSIT_BATCH = 1000


class Group(click.Group):
    """A click group that turns workflow errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkflowError as exc:
            where = f" ({exc.field})" if exc.field and exc.field not in exc.message else ""
            click.echo(f"error: {exc.message}{where}", err=True)
            sys.exit(2 if exc.status_code < 500 else 1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"],
                                          "show_default": True})  # fmt: skip
@click.version_option(__version__, prog_name="workflow")
def cli() -> None:
    """Bookkeeping for automated data processing: buckets, runners, results."""


@cli.command()
@click.option("--host", envvar="WORKFLOW_HOST", default="127.0.0.1", show_envvar=True,
              help="Listen address; anything but loopback needs access tokens.")
@click.option("--port", envvar="WORKFLOW_PORT", default=8004, type=int, show_envvar=True)
@click.option("--store", envvar="WORKFLOW_STORE", default="", show_envvar=True,
              help="Store URL: sqlite:///PATH or mongodb://... [default: SQLite in the "
              "user data directory]")
@click.option("--archive", envvar="WORKFLOW_ARCHIVE", default="", show_envvar=True,
              help="The runners' archive folder: the web UI shows plots and products from "
                   "it, and from nowhere else.")
@click.option("--log-level", default="info",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, store: str, archive: str, log_level: str) -> None:
    """Serve the buckets (/buckets) and results (/results) APIs, docs at /docs."""
    try:
        import uvicorn

        from workflow.service.app import Serving, create_app
    except ImportError as exc:  # a runner's install: no web stack
        raise click.ClickException(f"the server needs its extra packages ({exc.name} is "
                                   "missing): pip install 'workflow[server]'") from None
    from workflow.settings import ServerSettings
    from workflow.store import open_store

    settings = ServerSettings.from_env(host=host, port=port, store=store, archive=archive)
    opened = open_store(settings.store or None)  # a bad store URL fails here, in one line
    if settings.keyring:
        counts = ", ".join(f"{n} {role}" for role, n in settings.keyring.roles().items() if n)
        click.echo(f"workflow serve: access tokens: {counts}", err=True)
    else:
        click.echo(f"workflow serve: no access tokens configured: anyone who can reach "
                   f"{host}:{port} may do everything (loopback only)", err=True)  # fmt: skip
    config = uvicorn.Config(create_app(settings, opened), host=host, port=port,
                            log_level=log_level, access_log=log_level == "debug",
                            log_config=_log_config(log_level))  # fmt: skip
    Serving(config).run()


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, and the server's own lines (``workflow.*``) beside its own."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["workflow"] = {"handlers": ["default"], "level": level.upper(),
                                     "propagate": False}  # fmt: skip
    return config


@cli.command()
@click.option("--port", envvar="WORKFLOW_PORT", default=8004, type=int, show_envvar=True)
@click.option("--store", default="", help="Store URL [default: the demo's own SQLite file, "
              "$XDG_DATA_HOME/workflow/demo.db, emptied at each start]")
@click.option("--count", default=12, help="Demo works to deposit.")
@click.option("--exit", "exit_", is_flag=True, help="Stop the server when the demo is done.")
def demo(port: int, store: str, count: int, exit_: bool) -> None:
    """Start a server, deposit demo work, run a runner on it and show the results.

    The demo keeps to a store of its own, never the one 'workflow serve' uses by default.
    Ctrl-C or SIGTERM stops it with every process it started.
    """
    from rich.console import Console

    from workflow import demo as demo_module
    from workflow.client import Client
    from workflow.views import results_table, show
    from workflow.wire import Search
    from workflow.work import Work

    console = Console(soft_wrap=True)  # piped too, a line stays one line
    place = demo_module.prepare(fresh=not store)
    whose = "given" if store else "the demo's own, emptied at each start"
    store = store or f"sqlite:///{place / 'demo.db'}"
    log, url = place / "demo-server.log", f"http://127.0.0.1:{port}"
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, cli_watch.interrupt)
    server = None
    try:
        server = demo_module.start_server(port, store, log)
        with Client(url) as client:
            demo_module.wait_for(client)
            console.print(f"server  {url}  (store {store}, {whose}; log {log})")
            console.print(f"web UI  [bold]{url}/[/]  (the dashboard updates live)")
            ids = client.deposit(demo_module.demo_works(count))
            console.print(f"deposited {len(ids)} works to [bold]{demo_module.PIPELINE}[/]")
            console.print(f"starting [bold]workflow run {demo_module.PIPELINE}[/] to work it off")
            code = demo_module.run_runner(url, place / "demo-spool")
            console.print(f"the runner finished (exit code {code})")
            found, total = client.search(Search(pipeline=[demo_module.PIPELINE], limit=count))
            show(results_table(map(Work.model_validate, found), f"latest {len(found)} of "
                               f"{total} results"))  # fmt: skip
            console.print(f"API and its docs: {url}/docs   results: {url}/results/works")
        if exit_:
            return
        console.print("server running; Ctrl-C stops it")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            demo_module.stop(server)


def load_works(source: str) -> list[Any]:
    """The works in a JSON or YAML file (``-``: standard input): one object or a list.

    Raises:
        InvalidWork: the file cannot be read, is neither JSON nor YAML, or holds
            something other than a work object or a list of them.
    """
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidWork(f"cannot read {source}: {reason}") from None
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidWork(f"{source} is neither JSON nor YAML: {_yaml_problem(exc)}"
                              ) from None  # fmt: skip
    works = data if isinstance(data, list) else [data]
    if data is None or not works:
        raise InvalidWork(f"{source} holds no work")
    if not all(isinstance(work, dict) for work in works):
        kind = type(data if not isinstance(data, list) else data[0]).__name__
        raise InvalidWork(f"{source} must hold a work object or a list of work objects, "
                          f"not {'a list of ' if isinstance(data, list) else ''}{kind}")
    return works


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


def _deposit_all(client: Any, works: list[Any]) -> list[str]:
    if len(works) <= DEPOSIT_BATCH:
        return client.deposit(works)  # type: ignore[no-any-return]
    from rich.console import Console
    from rich.progress import Progress

    ids: list[str] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("depositing", total=len(works))
        for start in range(0, len(works), DEPOSIT_BATCH):
            ids += client.deposit(works[start : start + DEPOSIT_BATCH])
            progress.update(task, completed=len(ids))
    return ids


@cli.command()
@connect
@click.argument("file", required=False)
@click.option("-p", "--pipeline", help="Pipeline (bucket) of the works.")
@what_to_run
@click.option("--priority", type=int, help="1 (lowest) to 5 (highest).")
@click.option("--retries", type=int, help="Attempts allowed after the first, 0 to 5.")
@click.option("--timeout", type=int, help="Seconds one attempt may run.")
@click.option("--tag", "tags", multiple=True, help="A tag, repeatable.")
@click.option("--event", multiple=True, type=int, help="An event number, repeatable.")
@click.option("--site", envvar="WORKFLOW_SITE", show_envvar=True,
              help="Site to run at; from the environment it only fills works that "
              "name none.")  # fmt: skip
@click.option("--count", default=1, type=click.IntRange(min=1), help="Copies of each work.")
@click.option("--json", "as_json", is_flag=True, help="Print the ids as a JSON list.")
@click.option("--wait", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Then wait up to SECONDS for the works to finish and print each outcome "
                   "(with --json, the works); exit 1 unless every one succeeded.")
@click.pass_context
def deposit(ctx: click.Context, file: str | None, count: int, as_json: bool,
            wait: float | None, **options: Any) -> None:  # fmt: skip
    """Deposit works; print their ids, one per line.

    FILE is JSON or YAML holding one work or a list of works (- reads standard input).
    Without FILE the options describe one work. Options given on the command line
    replace those fields in every work of FILE.
    """
    from workflow.work import parse_work

    override, fill = work_fields(ctx, options)
    raws = load_works(file) if file else [{}]
    where = "works[{}]" if file else "work"
    works = [parse_work(fill_work(raw, override, fill), where.format(i))
             for i, raw in enumerate(raws) for _ in range(count)]  # fmt: skip
    ids = _deposit_all(ctx.obj, works)
    if wait is None:
        click.echo(json.dumps(ids) if as_json else "\n".join(ids))
        return
    done = ctx.obj.wait(ids, timeout=wait)
    click.echo(json.dumps(done) if as_json else "\n".join(map(_outcome_line, done)))
    if any(doc["status"] != "success" for doc in done):
        ctx.exit(1)


def _outcome_line(doc: dict[str, Any]) -> str:
    """One line for a work's outcome: id, status, then its results or its error."""
    errors = [e.get("error") for e in doc.get("history") or [] if e.get("error")]
    if doc["status"] == "success":
        said = json.dumps(doc.get("results"))
    elif errors:
        said = f"{errors[-1].get('type')}: {errors[-1].get('message')}"
    else:
        said = "not finished yet" if doc["status"] in ("queued", "running") else ""
    return f"{doc['id']}  {doc['status']}  {said}".rstrip()


@cli.group(cls=Group)
@connect
def buckets() -> None:
    """Queued and running work: status, priorities, pausing."""


@cli.group(cls=Group)
@connect
def results() -> None:
    """Finished work: search, one work and its history."""


@cli.group(cls=Group)
def graph() -> None:
    """Workflow graphs (the Ewoks format): run, validate, convert."""


@cli.group(cls=Group)
def pipelines() -> None:
    """Pipeline configurations (CHIME's v2 YAML): deploy, and their runs."""


@cli.group(cls=Group)
def schedules() -> None:
    """Schedules of pipeline configurations: list, pause, resume, remove."""


@cli.group(cls=Group)
def notifications() -> None:
    """Notifications: what was told to whom, the targets, a test message, alerts."""


@cli.group(cls=Group)
def token() -> None:
    """Access tokens: make one, or the tokens file's entry for one."""


cli.add_command(cli_run.run)
cli.add_command(cli_buckets.runners)
cli.add_command(cli_buckets.logs)
cli.add_command(cli_watch.watch)
for _group, _commands in ((token, cli_token.COMMANDS), (graph, cli_graph.COMMANDS),
                          (buckets, [*cli_buckets.COMMANDS, cli_notify.rules]),
                          (results, cli_results.COMMANDS), (pipelines, cli_pipelines.COMMANDS),
                          (schedules, cli_pipelines.SCHEDULE_COMMANDS),
                          (notifications, cli_notify.COMMANDS)):  # fmt: skip
    for _command in _commands:
        _group.add_command(_command)


def main() -> None:
    """Entry point of the ``workflow`` console script."""
    cli(prog_name="workflow")
