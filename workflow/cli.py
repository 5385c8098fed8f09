"""The ``workflow`` command. It only parses options and calls library code."""

from __future__ import annotations

import sys
from typing import Any

import click

from workflow import __version__
from workflow.errors import WorkflowError


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
              help="Listen address; anything but loopback needs WORKFLOW_TOKENS.")
@click.option("--port", envvar="WORKFLOW_PORT", default=8004, type=int, show_envvar=True)
@click.option("--store", envvar="WORKFLOW_STORE", default="", show_envvar=True,
              help="Store URL: sqlite:///PATH or mongodb://... [default: SQLite in the "
              "user data directory]")
@click.option("--log-level", default="info",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, store: str, log_level: str) -> None:
    """Serve the buckets (/buckets) and results (/results) APIs, docs at /docs."""
    import uvicorn

    from workflow.service.app import create_app
    from workflow.settings import ServerSettings
    from workflow.store import open_store

    settings = ServerSettings.from_env(host=host, port=port, store=store)
    opened = open_store(settings.store or None)  # a bad store URL fails here, in one line
    if not settings.tokens:
        click.echo(f"workflow serve: no access tokens configured; open to anyone on {host}",
                   err=True)  # fmt: skip
    uvicorn.run(create_app(settings, opened), host=host, port=port, log_level=log_level,
                access_log=log_level == "debug")  # fmt: skip


@cli.command()
@click.option("--port", envvar="WORKFLOW_PORT", default=8004, type=int, show_envvar=True)
@click.option("--store", envvar="WORKFLOW_STORE", default="", show_envvar=True,
              help="Store URL [default: SQLite in the user data directory]")
@click.option("--count", default=12, help="Demo works to deposit.")
@click.option("--exit", "exit_", is_flag=True, help="Stop the server when the demo is done.")
def demo(port: int, store: str, count: int, exit_: bool) -> None:
    """Start a server, deposit demo work, work it off and show the results."""
    from rich.console import Console

    from workflow import demo as demo_module
    from workflow.client import Client
    from workflow.store.sqlite import default_path
    from workflow.views import results_table

    console = Console()
    store = store or f"sqlite:///{default_path()}"
    log = default_path().parent / "demo-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = demo_module.start_server(port, store, log)
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url) as client:
            demo_module.wait_for(client)
            console.print(f"server  {url}  (store {store}, log {log})")
            ids = client.deposit(demo_module.demo_works(count))
            console.print(f"deposited {len(ids)} works to [bold]{demo_module.PIPELINE}[/]")
            attempts = demo_module.work_off(client)
            console.print(f"worked off the bucket in {attempts} attempts")
            found, total = client.search(pipeline=[demo_module.PIPELINE], limit=count)
            console.print(results_table(found, f"latest {len(found)} of {total} results"))
            console.print(f"API and its docs: {url}/docs   results: {url}/results/works")
        if exit_:
            return
        console.print("server running; Ctrl-C stops it")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    """Entry point of the ``workflow`` console script."""
    cli(prog_name="workflow")
