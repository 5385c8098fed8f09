"""``workflow graph ...``: run, check and convert workflow graphs (the Ewoks format)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
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
@click.option("--outputs", type=click.Choice(["end", "all"]), default=None,
              help="The end nodes' outputs merged into one object, or every node's by id. "
              "[default: the graph's outputs attribute, else end]")  # fmt: skip
@click.option("--output", "selected", multiple=True, metavar="NODE[:NAME[=NEW_NAME]]|JSON",
              help="Give this node's outputs (by id or label), or only its output NAME "
              "(renamed NEW_NAME), or an Ewoks selector as JSON; repeatable, instead of "
              "--outputs.")  # fmt: skip
@click.option("--merge/--no-merge", "merge", default=None,
              help="Merge the selected outputs into one object, or give them by node.  "
              "[default: merged, except for --outputs all]")  # fmt: skip
@click.option("--raise-on-error/--no-raise-on-error", "raise_on_error", default=None,
              help="A node that fails unhandled fails the graph; or the graph goes on past "
              "it (its independent branches run) and lists it in failed_nodes.  "
              "[default: the graph's raise_on_error attribute, else raise]")  # fmt: skip
@click.option("--engine", type=click.Choice(ENGINES), default="sequential",
              help="How nodes run: one after another here, in a process pool, or on Dask "
              "(WORKFLOW_DASK_SCHEDULER, else a local cluster).")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 256), help="Processes of the parallel and "
              "dask engines.  [default: the CPU count]")  # fmt: skip
@click.option("--max-runs", type=click.IntRange(1), default=1000,
              help="Runs of one node after which a loop counts as endless.")
@click.option("--quiet", "-q", is_flag=True, help="No line per node run on stderr.")
def run(file: str, parameters: dict[str, Any], outputs: str | None, selected: tuple[str, ...],
        merge: bool | None, raise_on_error: bool | None, engine: str, workers: int | None,
        max_runs: int, quiet: bool) -> None:  # fmt: skip
    """Run the graph in FILE and print its outputs as JSON, and nothing else, on
    standard output: what tasks print goes to standard error, so the result can be
    piped.

    FILE is a JSON or YAML graph, or package.name for one inside a package.
    """
    from workflow.graph import execute_graph, load
    from workflow.graph.model import display
    from workflow.graph.work import selection

    graph = load(file).with_parameters(parameters)
    graph.check_tasks()
    graph.check_inputs()
    asked: Any = [_selector(graph, text) for text in selected] or outputs or \
        graph.attrs.get("outputs")  # fmt: skip
    which, merged = selection(asked, merge if merge is not None
                              else graph.attrs.get("merge_outputs"))  # fmt: skip

    def said(node_run: NodeRun) -> None:
        if not quiet:
            took = node_run.stopped - node_run.started
            error = f": {node_run.error['type']}: {node_run.error['message']}" \
                if node_run.error else ""  # fmt: skip
            click.echo(f"{display(node_run.node)} (run {node_run.run}) {node_run.outcome} in "
                       f"{took:.3f} s{error}", err=True)  # fmt: skip

    with _stdout_to_stderr():
        execution = execute_graph(graph, engine_name=engine, workers=workers,
                                  max_runs=max_runs, on_run=said,
                                  raise_on_error=raise_on_error)  # fmt: skip
    result = execution.outputs(which, merge=merged)
    if execution.failures:
        result = {**result, "failed_nodes": execution.failed_nodes()}
    click.echo(json.dumps(result, indent=2, default=repr))


def _selector(graph: Any, text: str) -> dict[str, Any]:
    """An output selector from ``NODE[:NAME[=NEW_NAME]]`` (NODE an id or a label) or JSON."""
    from workflow.graph.model import display

    if text.lstrip().startswith("{"):
        try:
            found = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"{text!r} is not JSON: {exc}",
                                     param_hint="--output") from None  # fmt: skip
        if not isinstance(found, dict):
            raise click.BadParameter(f"{text!r} is not a JSON object", param_hint="--output")
        return found
    node, _, rest = text.partition(":")
    name, _, new_name = rest.partition("=")
    ids = {display(n): n for n in graph.nodes}
    selector: dict[str, Any] = {"id": ids[node]} if node in ids else {"label": node}
    if not graph.select(selector):
        raise click.BadParameter(f"no node has the id or label {node!r}", param_hint="--output")
    if name:
        selector["name"] = name
    if new_name:
        selector["new_name"] = new_name
    return selector


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 (and so ``print`` in tasks, and the processes they start) goes
    to standard error for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


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
