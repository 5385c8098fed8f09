"""The child process that runs work functions, a batch of attempts per message.

A runner keeps a few warm children, so an attempt costs no process start. The parent
sends a whole batch at once and the child answers each attempt as soon as it ends, so
a crash or a timeout is always charged to the attempt that caused it. Between attempts
the child looks for control messages: ``skip`` one attempt of the batch (it was
cancelled) or ``halt`` (the runner is stopping: start nothing more). A child that
crashes or overruns a timeout is killed and replaced by the parent.

Graph works run here too, each on the engine it names: ``sequential`` in this process,
``parallel`` in a pool of processes of its own, ``dask`` on the runner's cluster, whose
client the child keeps between graphs. The child leads a process group of its own, so
killing the group ends whatever an attempt started; the group also dies when the
runner does, even by ``kill -9`` (``_die_with_the_runner``).

What attempts write goes into the child's log file (``workflow.runner.live`` reads it
as it grows): file descriptors 1 and 2 point there for the child's life, so stdout
(line-buffered), stderr, Python logging (records of INFO and above, when the function
configured no logging of its own) and what a C library or a process the function starts
prints all land there. The file starts empty with each batch; each attempt's answer
says where in it the attempt's output ended, so the parent knows each attempt's bytes
without a file per attempt (which would cost more than a no-op attempt).

Messages, parent to child: ``("run", [(key, target, parameters, work, graph), ...])``
(``graph`` is None for a function, else ``{"engine", "scheduler"}``), ``("skip", key)``,
``("halt",)``, ``("load", target)`` (answered ``("loaded", why it cannot be called, or
None)``: the runner's check of its FUNCTION before it claims work), or ``None`` to
exit. Child to parent, per attempt: ``(key, the Outcome as JSON bytes, where its output
ends in the log file)``, or ``(key, None, end)`` for an attempt not started (skipped,
halted); before that, for a graph, ``(key, "start", node, None)`` as a node's run
starts and ``(key, "node", the node run's history entry as JSON bytes, None)`` as it
ends. JSON is
one of an outcome's two shapes, the one the journal and the server take: making it here
makes results plain JSON data (numpy values become numbers and lists, keys strings)
where the function ran, and costs less than pickling a model. Each outcome says its
provenance (``workflow.runner.provenance``: Python, host, image, runner, where the code
came from, the graph's hash), worked out once per process and function or graph.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import math
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from workflow.runner import provenance
from workflow.runner.outcome import failure, from_exception, from_return

_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
#: One attempt: (key, dotted function path, parameters, the work as a dict, and for a
#: graph work how to run it).
Job = tuple[str, str, dict[str, Any] | None, dict[str, Any], dict[str, Any] | None]


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


def loadable(target: str, cache: dict[str, Callable[..., Any]]) -> str | None:
    """Why ``target`` cannot be called here, in one line; None when it can (it is then
    loaded, for the attempts to come)."""
    try:
        load(target, cache)
    except BaseException as exc:  # noqa: BLE001 - importing user code may raise anything
        return f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return None


@functools.cache
def wants_work(function: Callable[..., Any]) -> bool:
    """True when ``function`` takes a parameter called ``work`` (cached per function)."""
    try:
        return "work" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def call(target: str, parameters: dict[str, Any] | None, payload: dict[str, Any],
         cache: dict[str, Callable[..., Any]]) -> bytes:  # fmt: skip
    """Run one attempt and describe what happened, as the outcome's JSON; never raises."""
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
    return _json(outcome, started, provenance.of_function(target))


def call_graph(work: dict[str, Any], how: dict[str, Any], say: Callable[[bytes], None],
               starting: Callable[[str], None] | None = None) -> bytes:  # fmt: skip
    """Run one graph attempt, saying its node runs as they start and end; never raises."""
    from workflow.graph.work import attempt
    from workflow.wire import Outcome

    started = time.time()
    try:
        outcome = Outcome.model_validate(attempt(work, say, how.get("engine"),
                                                 how.get("scheduler"), starting,
                                                 how.get("archive")))  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - a task may raise anything
        outcome = from_exception(exc)
    return _json(outcome, started, provenance.of_graph(work.get("graph")))


def _json(outcome: Any, started: float, origin: dict[str, Any]) -> bytes:
    """The outcome's JSON, timed from ``started`` to now, with its provenance ``origin``
    (put in the JSON rather than the model: the cached dict costs orjson next to
    nothing, pydantic would walk it)."""
    outcome.started, outcome.stop = started, time.time()
    try:
        return orjson.dumps({**outcome.model_dump(exclude_none=True), "provenance": origin},
                            option=_JSON)  # fmt: skip
    except orjson.JSONEncodeError as exc:  # say so here, where the results were made
        unwritable = failure("TypeError", f"the results cannot be stored as JSON: {exc}")
        unwritable.started, unwritable.stop = outcome.started, outcome.stop
        return orjson.dumps({**unwritable.model_dump(exclude_none=True), "provenance": origin})


def _node(conn: Connection, key: str, entry: bytes) -> None:
    conn.send((key, "node", entry, None))


def _start(conn: Connection, key: str, node: str) -> None:
    conn.send((key, "start", node, None))


def _log_to(path: str | None) -> int | None:
    """Point file descriptors 1 and 2 at the file ``path`` (made empty); the descriptor
    kept to empty it again and to learn its size, or None without a file."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    except OSError:
        return None  # no log rather than no child
    _flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return fd


def _written(log: int | None) -> int:
    """Where what was written so far ends in the log file (0 without one)."""
    if log is None:
        return 0
    _flush()
    return os.fstat(log).st_size


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a function may have replaced them
            stream.flush()


def _prepare_output() -> None:
    """Lines of stdout reach the log as they are printed, and logging records of INFO
    and above go to stderr unless a function configures logging itself."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()  # sys.stderr as it is at each record
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level == logging.WARNING:  # the default: nobody chose
            root.setLevel(logging.INFO)


class Ready:
    """``conn.poll(timeout)`` on one poll object kept for the connection: multiprocessing
    builds, registers and closes a new selector on every call, a good part of the cost
    of handing a work to a child and its outcome back."""

    def __init__(self, conn: Connection):
        self._poll = select.poll()
        self._poll.register(conn.fileno(), select.POLLIN)

    def __call__(self, timeout: float | None = 0.0) -> bool:
        """True when a message (or the end of the pipe) is waiting."""
        ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        return bool(self._poll.poll(ms))


def serve(conn: Connection, log: str | None = None) -> None:
    """The child's loop: run each batch, answering attempt by attempt, until told to
    stop; what attempts write goes to the file ``log``."""
    os.setsid()  # the parent kills the group: processes an attempt started die with it
    _die_with_the_runner(conn)
    # A graph's engine starts processes of its own (multiprocessing refuses that to a
    # daemonic process); the parent still ends this one when it stops.
    multiprocessing.current_process().daemon = False
    _prepare_output()
    fd = _log_to(log)
    cache: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        if message[0] == "load":
            conn.send(("loaded", loadable(message[1], cache)))
        elif message[0] == "run":
            if fd is not None:  # the parent read all of the last batch's output
                _flush()
                os.ftruncate(fd, 0)
            if not _run(conn, message[1], cache, fd):
                return


def _die_with_the_runner(conn: Connection) -> None:
    """End this process group as soon as the runner ends, however it ends (``kill -9``
    too): a child left running would go on with an attempt whose lease runs out and
    which another runner then starts again.

    A thread waits for the runner's end of ``conn`` to close (its own poll, which reads
    nothing from the pipe).
    """
    hangup = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
    watcher = select.poll()
    watcher.register(conn.fileno(), hangup)

    def watch() -> None:
        while True:
            if any(events & hangup for _, events in watcher.poll()):
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="workflow-runner-gone", daemon=True).start()


def _run(conn: Connection, jobs: list[Job], cache: dict[str, Callable[..., Any]],
         log: int | None) -> bool:  # fmt: skip
    """Run one batch; False when the parent asked the child to exit."""
    skip: set[str] = set()
    halted = False
    ready = Ready(conn)
    for key, target, parameters, payload, graph in jobs:
        while ready():  # control messages come between attempts, never during one
            control = conn.recv()
            if control is None:
                return False
            if control[0] == "skip":
                skip.add(control[1])
            elif control[0] == "halt":
                halted = True
        if halted or key in skip:
            conn.send((key, None, _written(log)))
            continue
        if graph is not None:
            said = call_graph(payload, graph, functools.partial(_node, conn, key),
                              functools.partial(_start, conn, key))  # fmt: skip
        else:
            said = call(target, parameters, payload, cache)
        conn.send((key, said, _written(log)))
    return True
