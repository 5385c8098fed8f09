"""Node outputs kept in the archive, so that a graph retried from its point of failure
reuses what already succeeded.

Each successful node run's outputs are kept (pickled) under
``ARCHIVE/nodes/KK/KEY.pickle``, ``KEY`` the SHA-256 of what decides them: the node's
task type, task identifier and generator, a fingerprint of the task's code (the bytes of
the file it is defined in), and its inputs. A run whose key is kept is not run again
when reuse is asked for (``workflow results retry --from-failure``): its outputs are
read back. So after a fix, a retry runs only the nodes that failed and what lies
downstream of them; a node whose code or inputs changed runs again.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.graph.tasks import resolve


@dataclass(frozen=True)
class NodeCache:
    """Where node outputs are kept, and whether to keep and to reuse them."""

    root: str  # the archive
    keep: bool = True
    reuse: bool = False

    def key(self, spec: tuple[Any, ...], inputs: dict[Any, Any]) -> str | None:
        """The key of a node run; None when its inputs cannot be fingerprinted."""
        _, task_type, identifier, _, generator, *_ = spec
        try:
            given = _json({str(name): value for name, value in inputs.items()})
        except (TypeError, ValueError, pickle.PicklingError):
            return None
        head = _json([task_type, _text(identifier), generator,
                      _code(task_type, _text(identifier), generator)])  # fmt: skip
        return hashlib.sha256(head + b"\0" + given).hexdigest()

    def path(self, key: str) -> Path:
        return Path(self.root) / "nodes" / key[:2] / f"{key}.pickle"

    def load(self, key: str) -> dict[str, Any] | None:
        """The outputs kept under ``key``, or None."""
        try:
            with self.path(key).open("rb") as file:
                found = pickle.load(file)  # noqa: S301 - written by our own runs
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None
        return found if isinstance(found, dict) else None

    def store(self, key: str, outputs: dict[str, Any]) -> None:
        """Keep ``outputs`` under ``key`` (whole or not at all); outputs that cannot be
        pickled are not kept."""
        path = self.path(key)
        try:
            data = pickle.dumps(outputs, protocol=pickle.HIGHEST_PROTOCOL)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return


def _json(value: Any) -> bytes:
    """``value`` as canonical JSON (sorted keys); what JSON cannot hold (an array, an
    object) by the digest of its pickle."""
    return json.dumps(value, sort_keys=True, default=_opaque, allow_nan=True).encode()


def _opaque(value: Any) -> Any:
    return {"pickle-sha256": hashlib.sha256(pickle.dumps(value)).hexdigest()}


def _text(identifier: Any) -> str:
    return identifier if isinstance(identifier, str) else json.dumps(identifier, sort_keys=True,
                                                                     default=str)  # fmt: skip


def _code(task_type: str, identifier: Any, generator: str | None) -> str:
    """A fingerprint of a task's code: the digest of the file that defines it, as it
    was when this process first ran the task (the code it has loaded: a module is
    imported once per process, so a file changed since runs only in a new process)."""
    source = _source(task_type, identifier, generator)
    return _digest(source) if source else ""


@functools.cache
def _source(task_type: str, identifier: Any, generator: str | None) -> str | None:
    """The file that defines a task, if there is one."""
    if task_type == "script":
        return identifier if isinstance(identifier, str) and os.path.isfile(identifier) else None
    try:
        return inspect.getsourcefile(resolve(task_type, identifier, generator))
    except Exception:  # noqa: BLE001 - a task that cannot be found has no code to read
        return None


@functools.cache
def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""
