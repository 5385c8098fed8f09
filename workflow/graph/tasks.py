"""Tasks: the nodes of a graph, written the way Ewoks tasks are.

A task class declares what it takes and gives, and ``run()`` reads ``self.inputs`` and
sets ``self.outputs``::

    class Add(Task, input_names=["a"], optional_input_names=["b"], output_names=["sum"]):
        def run(self):
            self.outputs.sum = self.inputs.a + (self.inputs.b or 0)

An Ewoks task ports by importing ``Task`` from here instead of ``ewokscore``. Tasks that
still subclass ``ewokscore.Task`` run too when ewokscore is installed (``execute``
below calls them through their own API).

Every other node type is a wrapper around something importable or runnable:
``method`` (a function; its return value is the output ``return_value``), ``script``
(a script or command; outputs ``return_code``, ``out``, ``err``), ``ppfmethod`` and
``ppfport`` (pypushflow style: a ``_ppfdict`` passed along), ``generated`` (a generator
function makes the task class).
"""

from __future__ import annotations

import abc
import importlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from workflow.errors import InvalidGraph


class _Missing:
    """The value of an optional input that was not given: falsy, and equal only to itself."""

    _instance: ClassVar[_Missing | None] = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING_DATA"

    def __reduce__(self) -> str:
        return "MISSING_DATA"  # pickles as the module attribute: stays the singleton


MISSING_DATA = _Missing()


class TaskInputError(ValueError):
    """A task lacks a required input."""


class _Values:
    """Read-only ``namespace.name`` and ``namespace["name"]`` access to values."""

    def __init__(self, values: Mapping[Any, Any], names: Iterable[str] = ()):
        object.__setattr__(self, "_values", {**{n: MISSING_DATA for n in names}, **values})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no input {name!r}") from None

    def __getitem__(self, name: Any) -> Any:
        return self._values[name]

    def __contains__(self, name: Any) -> bool:
        return name in self._values

    def __iter__(self) -> Any:
        return iter(self._values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("task inputs are read-only")

    def __repr__(self) -> str:
        return repr(self._values)


class _Outputs:
    """``self.outputs.name = value`` for the declared output names only."""

    def __init__(self, names: Iterable[str]):
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_values", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._names:
            raise AttributeError(f"{name!r} is not a declared output ({sorted(self._names)})")
        self._values[name] = value

    __setitem__ = __setattr__

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            if name in self._names:
                return MISSING_DATA
            raise AttributeError(f"no output {name!r}") from None

    __getitem__ = __getattr__


class Task(abc.ABC):
    """Base class of graph tasks; see the module docstring.

    Class keywords: ``input_names`` (required), ``optional_input_names``,
    ``output_names``, ``n_required_positional_inputs``; or, instead of the input names,
    ``input_model``: a pydantic model whose fields are the inputs (required when they
    have no default), which validates them before ``run`` (``self.inputs`` then holds
    the validated values, defaults included), as recent ewokscore does. A subclass adds
    to its parents'.
    """

    input_names: ClassVar[frozenset[str]] = frozenset()
    optional_input_names: ClassVar[frozenset[str]] = frozenset()
    output_names: ClassVar[frozenset[str]] = frozenset()
    n_required_positional_inputs: ClassVar[int] = 0
    input_model: ClassVar[type[BaseModel] | None] = None

    def __init_subclass__(cls, input_names: Iterable[str] = (),
                          optional_input_names: Iterable[str] = (),
                          output_names: Iterable[str] = (),
                          n_required_positional_inputs: int | None = None,
                          input_model: type[BaseModel] | None = None,
                          **kwargs: Any) -> None:  # fmt: skip
        super().__init_subclass__(**kwargs)
        if input_model is not None:
            if input_names or optional_input_names or n_required_positional_inputs:
                raise TypeError(f"{cls.__name__}: input_model replaces input_names, "
                                "optional_input_names and n_required_positional_inputs")
            if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
                raise TypeError(f"{cls.__name__}: input_model must be a pydantic model class")
            cls.input_model = input_model
            fields = input_model.model_fields
            input_names = [n for n, f in fields.items() if f.is_required()]
            optional_input_names = [n for n, f in fields.items() if not f.is_required()]
        for keyword, value in (("input_names", input_names),
                               ("optional_input_names", optional_input_names),
                               ("output_names", output_names)):  # fmt: skip
            if isinstance(value, str):
                raise TypeError(f"{cls.__name__}: {keyword} is a list of names, not a string")
        cls.input_names = cls.input_names | frozenset(input_names)
        cls.optional_input_names = cls.optional_input_names | frozenset(optional_input_names)
        cls.output_names = cls.output_names | frozenset(output_names)
        both = cls.input_names & cls.optional_input_names
        if both:
            raise TypeError(f"{cls.__name__}: inputs both required and optional: {sorted(both)}")
        if n_required_positional_inputs is not None:
            cls.n_required_positional_inputs = n_required_positional_inputs

    def __init__(self, inputs: Mapping[Any, Any] | None = None, *, node_id: Any = None,
                 label: str | None = None, workflow_id: str | None = None,
                 job_id: str | None = None, node_attrs: Mapping[str, Any] | None = None
                 ):  # fmt: skip
        given = {k: v for k, v in (inputs or {}).items() if v is not MISSING_DATA}
        missing = sorted(n for n in self.input_names if n not in given)
        positional = [i for i in range(self.n_required_positional_inputs)
                      if i not in given and str(i) not in given]  # fmt: skip
        if missing or positional:
            names = [*missing, *(f"position {i}" for i in positional)]
            raise TaskInputError(f"missing inputs for {type(self).__qualname__}: "
                                 f"{', '.join(names)}")  # fmt: skip
        if self.input_model is not None:
            given = _validated(self.input_model, given)
        self.node_id = node_id
        self.node_attrs = dict(node_attrs or {})
        if label is None:
            label = self.node_attrs.get("label")
        self.label = label if label is not None else str(node_id)
        self.workflow_id = workflow_id
        self.job_id = job_id
        self.inputs = _Values(given, self.input_names | self.optional_input_names)
        self.missing_inputs = _Values({n: n not in given for n in
                                       self.input_names | self.optional_input_names})
        self.outputs = _Outputs(self.output_names)

    @abc.abstractmethod
    def run(self) -> None:
        """Compute ``self.outputs`` from ``self.inputs`` (every task defines it)."""

    def get_input_value(self, name: Any, default: Any = MISSING_DATA) -> Any:
        """The input ``name``, or ``default`` when it was not given."""
        value = self.inputs._values.get(name, MISSING_DATA)
        return default if value is MISSING_DATA else value

    def get_input_values(self) -> dict[Any, Any]:
        """Every input that was given."""
        return {k: v for k, v in self.inputs._values.items() if v is not MISSING_DATA}

    def get_named_input_values(self) -> dict[str, Any]:
        """The given inputs with names (not positions)."""
        return {k: v for k, v in self.get_input_values().items() if not _position(k)[0]}

    def get_positional_input_values(self) -> list[Any]:
        """The given positional inputs, in order (gaps are ``MISSING_DATA``)."""
        return _positional(self.get_input_values())

    def get_output_values(self) -> dict[str, Any]:
        """Every output that was set."""
        return dict(self.outputs._values)


def _validated(model: type[BaseModel], given: dict[Any, Any]) -> dict[Any, Any]:
    """The inputs as ``model`` validates them: every field's value, defaults included.

    Raises:
        TaskInputError: an input is missing or invalid (the lines name each).
    """
    try:
        valid = model.model_validate({k: v for k, v in given.items() if isinstance(k, str)})
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'inputs'}: {e['msg']}"
                            for e in exc.errors())  # fmt: skip
        raise TaskInputError(f"invalid inputs for {model.__name__}: {reasons}") from None
    return {name: getattr(valid, name) for name in type(valid).model_fields}


def _position(name: Any) -> tuple[bool, int]:
    if isinstance(name, int) and not isinstance(name, bool):
        return True, name
    if isinstance(name, str) and name.isdigit():
        return True, int(name)
    return False, -1


def _positional(values: Mapping[Any, Any]) -> list[Any]:
    at = {}
    for name, value in values.items():
        is_position, index = _position(name)
        if is_position:
            at[index] = value
    return [at.get(i, MISSING_DATA) for i in range(max(at) + 1)] if at else []


# -- resolving and running nodes ----------------------------------------------------------

TASK_TYPES = ("class", "method", "script", "ppfmethod", "ppfport", "generated")


def imported(name: str) -> Any:
    """The object at the qualified name ``package.module.attr`` (or ``module:attr``).

    Raises:
        ImportError: no such module or attribute.
    """
    module, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not module or not attr:
        raise ImportError(f"{name!r} is not a qualified name such as package.module.name")
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"cannot import {module!r} for {name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(f"module {module!r} has no {attr!r}") from None
    return found


def resolve(task_type: str, identifier: Any, generator: str | None = None) -> Any:
    """What a node runs: a task class, a function, or the script itself.

    Raises:
        InvalidGraph: the task cannot be found or is not what its type needs.
    """
    try:
        if task_type == "class":
            found = imported(identifier)
            if not isinstance(found, type) or not _is_task_class(found):
                raise InvalidGraph(f"{identifier} is not a task class")
            return found
        if task_type in ("method", "ppfmethod"):
            found = imported(identifier)
            if not callable(found):
                raise InvalidGraph(f"{identifier} is not callable")
            return found
        if task_type == "generated":
            if not generator:
                raise InvalidGraph("a generated task needs a task_generator")
            return imported(generator)(identifier)
    except ImportError as exc:
        raise InvalidGraph(str(exc)) from exc
    return identifier


def declared(cls: Any, kind: str) -> frozenset[str]:
    """A task class's required inputs (``kind="input_names"``) or ``output_names``; for
    ewokscore tasks these are class methods, and their required inputs are
    ``required_input_names()``."""
    if kind == "input_names" and hasattr(cls, "required_input_names"):
        kind = "required_input_names"
    names = getattr(cls, kind, ())
    return frozenset(names() if callable(names) else names)


def _is_task_class(cls: type) -> bool:
    return issubclass(cls, Task) or (hasattr(cls, "execute") and hasattr(cls, "get_output_values"))


def execute(task_type: str, identifier: Any, inputs: dict[Any, Any], *, node_id: Any = None,
            label: str | None = None, generator: str | None = None,
            node_attrs: Mapping[str, Any] | None = None,
            partial: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one node with ``inputs``; its outputs by name. Raises what the task raises;
    a task's outputs set before it raised are then in ``partial``."""
    target = resolve(task_type, identifier, generator)
    if task_type in ("class", "generated"):
        if isinstance(target, type) and issubclass(target, Task):
            task = target(inputs, node_id=node_id, label=label, node_attrs=node_attrs)
            try:
                task.run()
            finally:
                if partial is not None:
                    partial.update(task.get_output_values())
            return task.get_output_values()
        # An ewokscore Task: its own API, with its node's id and attributes (its label).
        foreign = target(inputs=inputs, node_id=node_id, node_attrs=dict(node_attrs or {}))
        try:
            foreign.execute(raise_on_error=True)
        except Exception as exc:
            # ewokscore wraps what the task raised: say the task's own error.
            cause = exc.__cause__
            if type(exc).__name__ == "TaskExecutionError" and isinstance(cause, Exception):
                raise cause from None
            raise
        finally:
            if partial is not None:
                partial.update(_set_values(foreign))
        return dict(foreign.get_output_values())
    if task_type == "method":
        args, kwargs = _call_arguments(inputs)
        return {"return_value": target(*args, **kwargs)}
    if task_type == "ppfmethod":
        named = {k: v for k, v in inputs.items() if not _position(k)[0] and k != "_ppfdict"}
        merged = {**named, **(inputs.get("_ppfdict") or {})}
        returned = target(**merged)
        if not isinstance(returned, Mapping):
            raise TypeError(f"{identifier} returned {type(returned).__name__}, not a mapping")
        return {"_ppfdict": {**merged, **returned}}
    if task_type == "ppfport":
        named = {k: v for k, v in inputs.items() if k != "_ppfdict"}
        return {"_ppfdict": {**named, **(inputs.get("_ppfdict") or {})}}
    if task_type == "script":
        return _script(str(identifier), inputs)
    raise InvalidGraph(f"task_type {task_type!r} is not one of {', '.join(TASK_TYPES)}")


def _call_arguments(inputs: Mapping[Any, Any]) -> tuple[list[Any], dict[str, Any]]:
    kwargs = {k: v for k, v in inputs.items() if not _position(k)[0]}
    return _positional(inputs), kwargs


def _script(identifier: str, inputs: Mapping[Any, Any]) -> dict[str, Any]:
    """Run a script: ``.py`` with this Python, other files with bash unless they start
    with ``#!``, anything else as a command line. Positional inputs are trailing
    arguments, ``k`` becomes ``-k v`` and ``key`` ``--key v`` (an empty value: a flag)."""
    capture = inputs.get("_capture_output", True)
    merge = inputs.get("_merge_err", False)
    check = inputs.get("_raise_on_error", True)
    if identifier.endswith(".py"):
        argv = [sys.executable, identifier]
    elif os.path.isfile(identifier):
        with open(identifier, "rb") as script:
            shebang = script.read(2) == b"#!"
        argv = [identifier] if shebang else ["bash", identifier]
    else:
        argv = shlex.split(identifier)
    for name, value in inputs.items():
        if _position(name)[0] or str(name).startswith("_"):
            continue
        argv.append(f"-{name}" if len(str(name)) == 1 else f"--{name}")
        if value not in ("", None):
            argv.append(str(value))
    argv += [str(v) for v in _positional(inputs) if v is not MISSING_DATA]
    pipes: dict[str, Any] = {}
    if capture:
        pipes = {"stdout": subprocess.PIPE,
                 "stderr": subprocess.STDOUT if merge else subprocess.PIPE}  # fmt: skip
    done = subprocess.run(argv, text=True, check=False, **pipes)
    if check and done.returncode:
        raise RuntimeError(f"{identifier} exited with {done.returncode}: "
                           f"{(done.stderr or done.stdout or '')[-1000:]}")  # fmt: skip
    return {"return_code": done.returncode, "out": done.stdout if capture else None,
            "err": done.stderr if capture and not merge else None}  # fmt: skip



def _set_values(task: Any) -> dict[str, Any]:
    """The outputs an ewokscore task has set (its missing ones left out)."""
    try:
        values = dict(task.get_output_values())
    except Exception:  # noqa: BLE001 - a task that failed early may not answer
        return {}
    return {k: v for k, v in values.items() if type(v).__name__ != "MissingData"}
