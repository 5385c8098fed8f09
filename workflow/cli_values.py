"""Option values shared by the ``workflow`` commands, and the options that say what a
work runs (``deposit`` and ``watch`` both make works from them)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from workflow.errors import InvalidWork, WorkflowError

_Command = TypeVar("_Command", bound=Callable[..., Any])


def key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
               ) -> dict[str, Any]:  # fmt: skip
    """``KEY=VALUE`` options as a dict; each VALUE is read as JSON when it parses, else
    kept as a string."""
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not {param.metavar or 'KEY=VALUE'}", ctx, param)
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


def _graph(ctx: click.Context, param: click.Parameter, value: str | None
           ) -> dict[str, Any] | str | None:  # fmt: skip
    """A graph file's content (checked), or a package resource name as it is."""
    if value is None or not Path(value).exists():
        return value
    from workflow.graph.loading import load, read

    try:
        raw, _ = read(value)
        load(value)
    except WorkflowError as exc:
        raise click.BadParameter(exc.message, ctx, param) from None
    return raw


def _argv(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    try:
        return None if value is None else shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


_WHAT_TO_RUN = (
    click.option("--function", help="Dotted path of the function to run: package.module.name."),
    click.option("--command", callback=_argv,
                 help='Command to run, one string split as a shell would: "fold --dm 300".'),
    click.option("--graph", callback=_graph, metavar="GRAPH",
                 help="A workflow graph to run: a JSON or YAML file (sent inline, so runners "
                 "anywhere can run it), or package.name for one inside a package the runners "
                 "have."),
    click.option("--param", "parameters", multiple=True, metavar="KEY=VALUE",
                 callback=key_values,
                 help="A parameter, repeatable; VALUE is read as JSON when it parses, else "
                 "as a string. Merged into each work's parameters (graph inputs for a graph: "
                 "NAME, or NODE:NAME)."),
)  # fmt: skip


def what_to_run(command: _Command) -> _Command:
    """Add ``--function``, ``--command``, ``--graph`` and ``--param``: what a work runs
    and with which parameters (keyword arguments ``function``, ``command``, ``graph``,
    ``parameters``)."""
    for option in reversed(_WHAT_TO_RUN):
        command = option(command)
    return command


def fill_work(raw: dict[str, Any], override: dict[str, Any], fill: dict[str, Any]
              ) -> dict[str, Any]:  # fmt: skip
    """``raw`` with ``override`` on top and ``fill`` where ``raw`` has no value;
    ``parameters`` are merged key by key.

    Raises:
        InvalidWork: ``override`` names more than one of function, command and graph.
    """
    work = {**{k: v for k, v in fill.items() if raw.get(k) is None}, **raw, **override}
    runs = [name for name in ("function", "command", "graph") if name in override]
    if len(runs) > 1:
        raise InvalidWork(f"give one of function, command or graph, not {' and '.join(runs)}",
                          field=runs[1])  # fmt: skip
    for other in {"function", "command", "graph"} - set(runs[:1]) if runs else ():
        work.pop(other, None)
    params = override.get("parameters")
    if params and isinstance(raw.get("parameters"), dict):
        work["parameters"] = {**raw["parameters"], **params}
    return work


def work_fields(ctx: click.Context, options: dict[str, Any]
                ) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Work fields from the options: (typed on the command line, from the environment)."""
    override: dict[str, Any] = {}
    fill: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or value == () or value == {}:
            continue
        source = ctx.get_parameter_source(name)
        target = fill if source == ParameterSource.ENVIRONMENT else override
        target[name] = list(value) if isinstance(value, tuple) else value
    return override, fill
