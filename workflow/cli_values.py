"""Option values shared by the ``workflow`` commands."""

from __future__ import annotations

import json
from typing import Any

import click


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
