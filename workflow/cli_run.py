"""``workflow run``: the runner as a command and container entrypoint."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from workflow import collector
from workflow.cli_connect import make_client, server_options
from workflow.errors import InvalidWork
from workflow.work import DOTTED


def _split(values: tuple[str, ...]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


def pipelines_and_function(args: tuple[str, ...], pipeline: tuple[str, ...],
                           function: str | None) -> tuple[list[str], str | None]:  # fmt: skip
    """Sort ``workflow run``'s arguments into pipelines and the function to run.

    ``workflow run PIPELINE [FUNCTION]``, ``workflow run -p A -p B [FUNCTION]``,
    ``workflow run A -p B [FUNCTION]`` and CHIME's ``workflow run PIPELINE -f FUNCTION``
    all work; PIPELINE may be a comma list. With ``-p`` a lone argument is FUNCTION when
    it has a dot or a colon (which no pipeline name has), else one more PIPELINE.

    Raises:
        InvalidWork: no pipeline, two functions, or a function that is not a dotted path.
    """
    positional = list(args)
    names = _split(pipeline)
    if positional and (not names or len(positional) > 1 or not _looks_dotted(positional[0])):
        names = _split((positional.pop(0),)) + names
    if len(positional) > 1:
        raise InvalidWork(f"too many arguments: {' '.join(positional)}", field="FUNCTION")
    if positional:
        if function:
            raise InvalidWork("give the function once: as FUNCTION or with -f", field="function")
        function = positional[0]
    if not names:
        raise InvalidWork("name at least one pipeline to take work from", field="PIPELINE")
    if function and not DOTTED.match(function):
        raise InvalidWork(f"{function!r} is not a dotted path like package.module.function",
                          field="function")  # fmt: skip
    return names, function


def _looks_dotted(arg: str) -> bool:
    return "." in arg or ":" in arg


@click.command("run")
@click.argument("args", nargs=-1, metavar="[PIPELINE] [FUNCTION]")
@click.option("-p", "--pipeline", multiple=True, envvar="WORKFLOW_PIPELINES", show_envvar=True,
              help="Pipeline to take work from; repeat or use a comma list.")
@click.option("-f", "--function", envvar="WORKFLOW_FUNCTION", show_envvar=True,
              help="Run this function for every work (package.module.func or module:func).")
@click.option("-s", "--site", envvar="WORKFLOW_SITE", show_envvar=True,
              help="Only works of this site.")
@click.option("-t", "--tags", multiple=True, envvar="WORKFLOW_TAGS", show_envvar=True,
              help="Only works with any of these tags (repeat or comma list).")
@click.option("-l", "--lives", type=click.IntRange(min=1), envvar="WORKFLOW_LIVES",
              show_envvar=True, help="Exit after this many works.")
@click.option("--burst", is_flag=True, envvar="WORKFLOW_BURST", show_envvar=True,
              help="Exit when no work is left.")
@click.option("--sleep", type=click.FloatRange(min=0.01), default=1.0, envvar="WORKFLOW_SLEEP",
              show_envvar=True, help="Seconds to wait when idle and the server cannot hold a "
              "withdraw until work comes (an older server); doubles up to --max-sleep.")
@click.option("--max-sleep", type=click.FloatRange(min=0.01), default=30.0,
              envvar="WORKFLOW_MAX_SLEEP", show_envvar=True)
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=1,
              envvar="WORKFLOW_CONCURRENCY", show_envvar=True, help="Attempts at once.")
@click.option("--prefetch", type=click.IntRange(1, 1000), envvar="WORKFLOW_PREFETCH",
              show_envvar=True, help="Works to keep claimed [default: the runner chooses: "
              "up to 500, as many as it expects to start within 5% of their timeout].")
@click.option("--lease", type=click.FloatRange(min=1), default=60.0, envvar="WORKFLOW_LEASE",
              show_envvar=True, help="Seconds a claim holds between heartbeats.")
@click.option("--name", envvar="WORKFLOW_RUNNER_NAME", show_envvar=True,
              help="What the runners' list calls this runner [default: HOST-PID, its id].")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, envvar="WORKFLOW_GRACE",
              show_envvar=True, help="Seconds running works get to finish on SIGTERM.")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path),
              envvar="WORKFLOW_ARCHIVE", show_envvar=True,
              help="Copy or move products and plots into this directory.")
@click.option("--graph-engine", type=click.Choice(["sequential", "parallel", "dask"]),
              default="sequential", envvar="WORKFLOW_GRAPH_ENGINE", show_envvar=True,
              help="How graph works run their nodes, unless the graph says (its engine).")
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path),
              envvar="WORKFLOW_SPOOL", show_envvar=True,
              help="Outcomes not yet delivered [default: $XDG_DATA_HOME/workflow/spool].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              envvar="WORKFLOW_LOG_FORMAT", show_envvar=True)
@server_options
def run(args: tuple[str, ...], pipeline: tuple[str, ...], function: str | None,
        site: str | None, tags: tuple[str, ...], lives: int | None, burst: bool, sleep: float,
        max_sleep: float, concurrency: int, prefetch: int | None, lease: float, grace: float,
        name: str | None, archive: Path | None, graph_engine: str, spool: Path | None,
        log_format: str, url: str, token: str | None) -> None:  # fmt: skip
    """Take work from PIPELINE, run it, report the outcome; FUNCTION (optional) runs for
    every work, else each work's own function, command or graph.

    PIPELINE may be a comma list, and -p adds more (with -p alone, one argument with a dot
    or a colon is FUNCTION). Before anything is claimed, FUNCTION (or -f) is imported in
    the runner's first work process: one that cannot be imported, or is no function, ends
    the runner with exit code 2. Each work's own function is not checked: its failure is
    the work's.
    """
    import sys

    from workflow.runner import Runner, RunnerOptions
    from workflow.runner.report import Reporter

    names, function = pipelines_and_function(args, pipeline, function)
    options = RunnerOptions(pipelines=names, function=function, site=site, tags=_split(tags),
                            lives=lives, burst=burst, sleep=sleep, max_sleep=max_sleep,
                            concurrency=concurrency, prefetch=prefetch, lease=lease,
                            grace=grace, archive=archive, name=name,
                            graph_engine=graph_engine)  # fmt: skip
    if spool is not None:
        options.spool = spool
    # Until the runner takes over the signals, nothing is claimed: a stop while the
    # server is still being reached (it may be restarting) ends the runner at once.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_before_starting)
    with make_client(url, token) as client:
        client.call("GET", "/buckets/version", safe=True)  # fail early, in one line
        collector.settle()
        sys.exit(Runner(client, options, Reporter(log_format)).run())


def _stopped_before_starting(signum: int, frame: FrameType | None) -> None:
    click.echo(f"notice  {signal.Signals(signum).name} before any work was claimed: stopping",
               err=True)  # fmt: skip
    raise SystemExit(0)
