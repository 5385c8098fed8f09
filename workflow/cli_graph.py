"""``workflow graph ...``: run, check and convert workflow graphs (the Ewoks format)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from workflow.cli_values import key_values

if TYPE_CHECKING:
    from workflow.graph import NodeRun

# The graph modules load only when a graph command runs.
ENGINES = ("sequential", "parallel", "dask")


parameter_option = click.option(
    "-p", "--param", "parameters", multiple=True, metavar="[NODE:]NAME=VALUE",
    callback=key_values, help="A graph input, repeatable: to the start nodes, or to the node "
    "with that id or label. VALUE is read as JSON when it parses, else as a string.")  # fmt: skip


@click.command("run")
@click.argument("file")
@parameter_option
@click.option("--outputs", type=click.Choice(["end", "all"]), default="end",
              help="The end nodes' outputs merged into one object, or every node's by id.")
@click.option("--engine", type=click.Choice(ENGINES), default="sequential",
              help="How nodes run: one after another here, in a process pool, or on Dask "
              "(WORKFLOW_DASK_SCHEDULER, else a local cluster).")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 256), help="Processes of the parallel and "
              "dask engines.  [default: the CPU count]")  # fmt: skip
@click.option("--max-runs", type=click.IntRange(1), default=1000,
              help="Runs of one node after which a loop counts as endless.")
@click.option("--quiet", "-q", is_flag=True, help="No line per node run on stderr.")
def run(file: str, parameters: dict[str, Any], outputs: str, engine: str, workers: int | None,
        max_runs: int, quiet: bool) -> None:  # fmt: skip
    """Run the graph in FILE and print its outputs as JSON.

    FILE is a JSON or YAML graph, or package.name for one inside a package.
    """
    from workflow.graph import execute_graph, load
    from workflow.graph.model import display

    graph = load(file).with_parameters(parameters)
    graph.check_tasks()
    graph.check_inputs()

    def said(node_run: NodeRun) -> None:
        if not quiet:
            took = node_run.stopped - node_run.started
            error = f": {node_run.error['type']}: {node_run.error['message']}" \
                if node_run.error else ""  # fmt: skip
            click.echo(f"{display(node_run.node)} (run {node_run.run}) {node_run.outcome} in "
                       f"{took:.3f} s{error}", err=True)  # fmt: skip

    execution = execute_graph(graph, engine_name=engine, workers=workers, max_runs=max_runs,
                              on_run=said)  # fmt: skip
    result = execution.outputs("end" if outputs == "end" else "all", merge=outputs == "end")
    click.echo(json.dumps(result, indent=2, default=repr))


@click.command()
@click.argument("file")
@parameter_option
@click.option("--imports/--no-imports", default=True,
              help="Also import every task and check that required inputs have a source.")
def validate(file: str, parameters: dict[str, Any], imports: bool) -> None:
    """Check the graph in FILE: structure, links, cycles, tasks, inputs."""
    from workflow.graph import load
    from workflow.graph.model import display

    graph = load(file).with_parameters(parameters)
    if imports:
        graph.check_tasks()
        graph.check_inputs()
    kind = [word for word, yes in (("cyclic", graph.is_cyclic()),
                                   ("conditional", graph.has_conditions())) if yes]  # fmt: skip
    click.echo(f"{file}: valid{' (' + ', '.join(kind) + ')' if kind else ''}: "
               f"{len(graph.nodes)} nodes, {len(graph.links)} links; start "
               f"{', '.join(display(n) for n in graph.start_nodes()) or '-'}; end "
               f"{', '.join(display(n) for n in graph.end_nodes()) or '-'}")  # fmt: skip


@click.command()
@click.argument("source")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def convert(source: str, destination: Path) -> None:
    """Write the graph in SOURCE to DESTINATION as JSON or YAML (by its extension),
    unchanged in content; '-' as DESTINATION writes JSON to standard output."""
    from workflow.graph import load
    from workflow.graph.loading import read

    raw, _ = read(source)
    load(source)  # refuse to convert what would not load
    if str(destination) == "-":
        click.echo(json.dumps(raw, indent=2))
    elif destination.suffix in (".yaml", ".yml"):
        _write(destination, yaml.safe_dump(raw, sort_keys=False))
    elif destination.suffix == ".json":
        _write(destination, json.dumps(raw, indent=2) + "\n")
    else:
        click.echo(f"error: {destination} should end in .json, .yaml or .yml", err=True)
        sys.exit(2)


def _write(destination: Path, text: str) -> None:
    """Write ``text`` to ``destination``, making its folder if missing; one error line
    when that cannot be done."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text)
    except OSError as exc:
        click.echo(f"error: cannot write {destination}: {exc.filename or destination}: "
                   f"{exc.strerror or exc}", err=True)  # fmt: skip
        sys.exit(1)


COMMANDS = [run, validate, convert]
