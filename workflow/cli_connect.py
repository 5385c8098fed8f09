"""How the ``workflow`` commands reach a server: ``--url`` and ``--token``, and the
``Client`` made of them, which says on a terminal when it waits for the server."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from workflow.errors import WorkflowError
from workflow.settings import DEFAULT_URL

if TYPE_CHECKING:
    from workflow.client import Client

#: Seconds a command keeps retrying while the server does not answer; short, because a
#: person is waiting (the library's default suits runners, which should ride out restarts).
RETRY_FOR = 3.0
#: Where a group keeps its ``--url`` and ``--token`` for its subcommands (``ctx.meta``).
_ADDRESS = "workflow.address"

url_option = click.option("--url", envvar="WORKFLOW_URL", default=DEFAULT_URL,
                          show_envvar=True, help="Server base URL.")  # fmt: skip
token_option = click.option("--token", envvar="WORKFLOW_TOKEN", show_envvar=True,
                            help="Access token.")  # fmt: skip


def server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--url`` and ``--token`` (keyword arguments ``url`` and ``token``)."""
    return url_option(token_option(command))


def waiting_notice(url: str, retry_for: float) -> Callable[[BaseException, int], None]:
    """A ``Client.on_retry`` that says once per call, before its first repeat, that the
    command waits for the server at ``url``; silent unless stderr is a terminal (piped or
    logged output keeps its one final error line)."""

    def notice(exc: BaseException, repeat: int) -> None:
        if repeat == 1 and sys.stderr.isatty():
            why = exc.message if isinstance(exc, WorkflowError) else "no answer"
            click.echo(f"waiting for the server at {url} ({why}); retrying for up to "
                       f"{retry_for:g} s", err=True)  # fmt: skip

    return notice


def make_client(url: str, token: str | None, retry_for: float = 30.0) -> Client:
    """A ``Client`` for ``url`` that says on a terminal when it waits for the server."""
    from workflow.client import Client

    return Client(url, token or None, retry_for=retry_for,
                  on_retry=waiting_notice(url.rstrip("/"), retry_for))  # fmt: skip


def connect(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--url`` and ``--token`` to a command or a group of commands.

    On a group they only hold the address for its subcommands; each subcommand takes them
    too, so they may come before or after its name (after wins). A command finds its
    ``Client`` in ``ctx.obj``.
    """

    @click.pass_context
    def with_client(ctx: click.Context, url: str, token: str | None, **kwargs: Any) -> Any:
        url, token = _address(ctx, url, token)
        if isinstance(ctx.command, click.Group):
            ctx.meta[_ADDRESS] = (url, token)
        else:
            ctx.obj = ctx.with_resource(make_client(url, token, RETRY_FOR))
        return command(**kwargs)

    with_client.__doc__ = command.__doc__
    with_client.__name__ = command.__name__
    with_client.__click_params__ = getattr(command, "__click_params__", [])  # type: ignore[attr-defined]
    return server_options(with_client)


def _address(ctx: click.Context, url: str, token: str | None) -> tuple[str, str | None]:
    """The url and token: typed after the command's name, else given to its group, else
    from the environment or the default."""
    outer = ctx.meta.get(_ADDRESS)
    if outer is None:
        return url, token
    typed = {name: ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
             for name in ("url", "token")}  # fmt: skip
    return (url if typed["url"] else outer[0]), (token if typed["token"] else outer[1])
