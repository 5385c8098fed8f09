"""The child process that runs work functions, one attempt at a time.

A runner keeps a few warm children, so an attempt costs a message, not a process
start; a child that crashes or overruns its timeout is killed and replaced by the
parent, and the runner carries on.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from workflow.runner.outcome import Outcome, failure, from_exception, from_return

#: A request to the child: (dotted function path, parameters, the work as a dict).
Request = tuple[str, dict[str, Any] | None, dict[str, Any]]


def load(target: str, cache: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    """The callable at ``package.module.func`` or ``package.module:func``.

    Raises:
        ImportError: the module or the attribute cannot be found.
        TypeError: the attribute is not callable.
    """
    if target in cache:
        return cache[target]
    module, sep, name = target.partition(":") if ":" in target else target.rpartition(".")
    if not module or not name:
        raise ImportError(f"{target!r} is not a dotted path such as package.module.function")
    try:
        found = getattr(importlib.import_module(module), name)
    except AttributeError:
        raise ImportError(f"module {module!r} has no attribute {name!r}") from None
    if not callable(found):
        raise TypeError(f"{target} is {type(found).__name__}, not a function")
    cache[target] = found
    return found  # type: ignore[no-any-return]


@functools.cache
def wants_work(function: Callable[..., Any]) -> bool:
    """True when ``function`` takes a parameter called ``work`` (cached per function)."""
    try:
        return "work" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def call(target: str, parameters: dict[str, Any] | None, payload: dict[str, Any],
         cache: dict[str, Callable[..., Any]]) -> Outcome:  # fmt: skip
    """Run one attempt and describe what happened; never raises."""
    started = time.time()
    try:
        function = load(target, cache)
        kwargs = dict(parameters or {})
        if wants_work(function):
            from workflow.work import Work

            kwargs["work"] = Work.model_validate(payload)
        outcome = from_return(function(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - user code may raise SystemExit too
        outcome = from_exception(exc)
    outcome.started, outcome.stop = started, time.time()
    return outcome


def serve(conn: Connection) -> None:
    """The child's loop: answer each request with an ``Outcome`` until told to stop."""
    cache: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            request: Request | None = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is None:
            return
        outcome = call(*request, cache)
        try:
            conn.send(outcome)
        except Exception as exc:  # noqa: BLE001 - e.g. results that cannot be pickled
            conn.send(failure(type(exc).__name__, f"cannot send the outcome back: {exc}"))
