"""``workflow watch``: a trigger for acquisitions, one work per new, complete file."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import click

from workflow.cli_connect import make_client, server_options
from workflow.cli_values import fill_work, what_to_run, work_fields


@click.command("watch")
@click.argument("folder", metavar="DIR")
@click.option("-p", "--pipeline", required=True, envvar="WORKFLOW_WATCH_PIPELINE",
              show_envvar=True, help="Pipeline (bucket) of the works.")
@click.option("--pattern", "patterns", multiple=True, default=("*",), metavar="GLOB",
              envvar="WORKFLOW_WATCH_PATTERN", show_envvar=True,
              help="Only files whose path below DIR matches GLOB, from the right: '*.h5', "
              "'scan*/*.h5'; repeatable. Hidden and temporary files (.name, *.tmp, *.part, "
              "*~) only when GLOB is written so itself: '.*.h5'.")
@click.option("--settle", type=click.FloatRange(min=0.05), default=2.0, metavar="SECONDS",
              envvar="WORKFLOW_WATCH_SETTLE", show_envvar=True,
              help="A file is complete once its size and modification time have stayed the "
              "same this long.")
@what_to_run
@click.option("-r", "--recursive", is_flag=True, envvar="WORKFLOW_WATCH_RECURSIVE",
              show_envvar=True, help="Watch the subfolders too.")
@click.option("--polling", is_flag=True, envvar="WORKFLOW_WATCH_POLLING", show_envvar=True,
              help="Look at DIR every second instead of waiting for the kernel's "
              "notifications: needed on network file systems (NFS, GPFS, Lustre), which send "
              "none for writes made on other hosts.")
@server_options
@click.pass_context
def watch(ctx: click.Context, folder: str, patterns: tuple[str, ...], settle: float,
          recursive: bool, polling: bool, url: str, token: str | None,
          **options: Any) -> None:  # fmt: skip
    """Deposit one work per new, complete file in DIR, with the file's absolute path as
    the parameter "path" (a --command gets it as its last argument, or where it says
    {path}); run until Ctrl-C or SIGTERM.

    Print one line per file: "deposited ID PATH", or "already deposited ID PATH" for a
    file whose work exists (ids come from the path, size and modification time, so a
    restarted watcher deposits nothing twice). A file changed after its deposit is a new
    work.
    """
    from workflow.watch import Selection, Watcher

    override, fill = work_fields(ctx, options)
    with make_client(url, token) as client:
        watcher = Watcher(client, folder, fill_work({}, override, fill),
                          selection=Selection(patterns), settle=settle, recursive=recursive,
                          polling=polling)  # fmt: skip
        counts = {True: 0, False: 0}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, interrupt)
            client.call("GET", "/buckets/version", safe=True)  # fail early, in one line
            with watcher:
                click.echo(f"watching {watcher.folder} ({'polling' if polling else 'events'}, "
                           f"settle {settle:g} s) for pipeline {watcher.work['pipeline']}",
                           err=True)  # fmt: skip
                for done in watcher.deposits():
                    counts[done.new] += 1
                    said = "deposited" if done.new else "already deposited"
                    click.echo(f"{said:<17}  {done.id}  {done.path}")
        except KeyboardInterrupt:
            pass
    click.echo(f"stopped: {counts[True]} deposited, {counts[False]} already deposited",
               err=True)  # fmt: skip


def interrupt(signum: int, frame: FrameType | None) -> None:
    """A handler of SIGTERM and SIGINT that raises ``KeyboardInterrupt`` once: one signal
    stops the command; a second must not cut its clean-up short."""
    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, signal.SIG_IGN)
    raise KeyboardInterrupt
