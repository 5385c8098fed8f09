"""What produced an attempt's outcome: its provenance, kept in the attempt's history entry.

``python`` (the version), ``host``, ``image`` (the container image, when the environment
names one), ``runner`` (workflow's version) and, for a function or a graph, ``code``: per
top-level module that the function or the graph's tasks come from, its distribution's
name and version, ``git`` (``git describe --always --dirty``) when it comes from a git
checkout (both for an editable install of one), ``"stdlib"``, or ``"unknown"``. A
graph's record has ``graph`` too: the sha256 of its JSON with sorted keys, as the work
gives it (a dict) or as read from the JSON text, file or package resource it names (so
a JSON and a YAML file of the same graph hash the same).

A module's distribution is the one of its name when that one provides it (a look-up of
a millisecond); a module in ``site-packages`` under another name (``yaml`` of PyYAML) is
looked up in the index of every installed distribution, built once (50 ms) and only
then. An editable install under another name than its module's gets ``git`` only.

Everything is worked out once per process and per function or graph: a warm work process
runs the same code for its whole life (a module imported once is not imported again, so
the first ``git describe`` of its folder holds for the process), and a no-op attempt
pays one dictionary look-up. Nothing here raises: what cannot be found is left out.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

import workflow

#: Environment variables that name the container image an attempt runs in, in order.
IMAGE_VARIABLES = ("WORKFLOW_IMAGE", "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER",
                   "CONTAINER_IMAGE")  # fmt: skip
#: Most modules named in one record (a graph of many packages keeps the first ones).
MOST_MODULES = 50
#: Functions or graphs remembered per process; past that the memory starts again.
MOST_TARGETS = 256
#: Node types whose ``task_identifier`` names an importable object.
_IMPORTED = ("class", "method", "ppfmethod")
_INSTALLED = {"site-packages", "dist-packages"}

_functions: dict[str, dict[str, Any]] = {}
_graphs: dict[str, dict[str, Any]] = {}


@functools.cache
def basic() -> dict[str, Any]:
    """Python version, host, container image (when named) and runner version: the same
    for every attempt of this process (commands get only these)."""
    found: dict[str, Any] = {"python": platform.python_version(), "host": socket.gethostname()}
    image = next((os.environ[name] for name in IMAGE_VARIABLES if os.environ.get(name)), None)
    if image:
        found["image"] = image[:1000]
    found["runner"] = workflow.__version__
    return found


def of_function(target: str) -> dict[str, Any]:
    """The provenance of an attempt of the function at ``target`` (``pkg.mod.func`` or
    ``pkg.mod:func``), after it was loaded."""
    found = _functions.get(target)
    if found is None:
        if len(_functions) >= MOST_TARGETS:
            _functions.clear()
        found = _functions[target] = {**basic(), "code": code([target])}
    return found


def of_graph(source: Any) -> dict[str, Any]:
    """The provenance of an attempt of the graph ``source`` (a work's ``graph``: a dict,
    JSON, or a file or package resource name)."""
    try:
        from workflow.graph.loading import read

        raw = source if isinstance(source, dict) else read(source)[0]
        digest = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except Exception:  # noqa: BLE001 - the attempt says what is wrong with the graph
        return basic()
    found = _graphs.get(digest)
    if found is None:
        if len(_graphs) >= MOST_TARGETS:
            _graphs.clear()
        found = _graphs[digest] = {**basic(), "code": code(_tasks(source)), "graph": digest}
    return found


def _tasks(source: Any) -> list[str]:
    """The qualified names of what the graph's nodes import (none for a graph that does
    not load: its attempt fails and says why)."""
    try:
        from workflow.graph.loading import load

        nodes = load(source).nodes.values()
    except Exception:  # noqa: BLE001
        return []
    names = []
    for node in nodes:
        name = node.attrs.get("task_generator") if node.task_type == "generated" \
            else node.identifier if node.task_type in _IMPORTED else None  # fmt: skip
        if isinstance(name, str):
            names.append(name)
    return names


def code(names: list[str]) -> dict[str, Any]:
    """Where the top-level modules of the qualified ``names`` come from, by module."""
    modules = dict.fromkeys(re.split(r"[.:]", name, maxsplit=1)[0] for name in names)
    return {module: origin(module) for module in list(modules)[:MOST_MODULES] if module}


@functools.cache
def origin(module: str) -> dict[str, str] | str:
    """Where the top-level ``module`` comes from: ``{"distribution", "version"}`` for an
    installed distribution, ``{"git"}`` for a git checkout (both for an editable install
    of one), ``"stdlib"``, or ``"unknown"``."""
    if module in sys.stdlib_module_names or module in sys.builtin_module_names:
        return "stdlib"
    folder = _folder(module)
    installed = folder is not None and bool(_INSTALLED & set(Path(folder).parts))
    found: dict[str, str] = {}
    try:
        distribution = _distribution(module, installed)
        if distribution is not None:
            found = {"distribution": distribution.metadata["Name"],
                     "version": distribution.version}  # fmt: skip
    except Exception:  # noqa: BLE001 - broken metadata is no reason to fail an attempt
        found = {}
    # An installed package's folder may sit inside some checkout (a virtualenv in a
    # project's tree): that describe would be the project's, not the package's.
    if folder is not None and not installed:
        described = git_describe(folder)
        if described is not None:
            found["git"] = described
    return found or "unknown"


def _distribution(module: str, installed: bool) -> importlib.metadata.Distribution | None:
    """The distribution that provides the top-level ``module``: the one of the same name
    when it does (a look-up of a millisecond), else, for a module in ``site-packages``,
    the one the index of every distribution names (``packages_distributions``, which
    reads them all: 50 ms, once, and only then)."""
    try:
        same = importlib.metadata.distribution(module)
    except importlib.metadata.PackageNotFoundError:
        same = None
    if same is not None:
        declared = (same.read_text("top_level.txt") or "").split()
        provided = declared or {f.parts[0].split(".")[0] for f in same.files or [] if f.parts}
        if module in provided:
            return same
    if not installed:
        return None
    names = _distributions().get(module)
    return importlib.metadata.distribution(names[0]) if names else None


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # type: ignore[return-value]


def _folder(module: str) -> str | None:
    """The folder the top-level ``module``'s code is in (None when it has no file)."""
    try:
        loaded = sys.modules.get(module)
        if loaded is not None:
            path = getattr(loaded, "__file__", None) \
                or next(iter(getattr(loaded, "__path__", None) or []), None)  # fmt: skip
        else:
            spec = importlib.util.find_spec(module)
            path = spec and (spec.origin if spec.has_location else
                             next(iter(spec.submodule_search_locations or []), None))  # fmt: skip
    except Exception:  # noqa: BLE001 - a module's finder may raise anything
        return None
    if not path or not os.path.exists(path):
        return None
    return path if os.path.isdir(path) else os.path.dirname(path)


@functools.cache
def git_describe(folder: str) -> str | None:
    """``git describe --always --dirty`` of the checkout ``folder`` is in; None when it
    is in none (or git is missing)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=folder,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    described = done.stdout.strip()
    return described[:200] if done.returncode == 0 and described else None
