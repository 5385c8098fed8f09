"""``workflow token``: make access tokens and the entries of the tokens file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workflow.tokens import ROLES, add_to_file, entry, long_enough, new_token


@click.command("new")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Add the entry to this tokens file (WORKFLOW_TOKENS_FILE); a new file, "
                   "and a missing folder, are made readable by their owner only.")  # fmt: skip
def new(name: str, role: str, path: Path | None) -> None:
    """Make a token called NAME: the token goes to stdout, once; the server keeps only the
    digest, in the entry printed to stderr (or added to --file)."""
    token = new_token()
    text = entry(name, role, token)  # type: ignore[arg-type]
    if path is None:
        click.echo(text, err=True)
    else:
        add_to_file(path, name, text)
        click.echo(f"added {name} ({role}) to {path}", err=True)
    click.echo(token)


@click.command("digest")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
def digest(name: str, role: str) -> None:
    """Print the tokens file's entry for a token read from stdin (one line)."""
    token = long_enough(sys.stdin.readline().strip(), "the token on stdin")
    click.echo(entry(name, role, token), nl=False)  # type: ignore[arg-type]


COMMANDS = [new, digest]
