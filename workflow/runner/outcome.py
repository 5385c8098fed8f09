"""What an attempt produced (an ``Outcome``, ``workflow.wire``), and how a function's
return value becomes that (pure).

The return contract of a work function:

- a ``dict`` becomes ``results``;
- a tuple ``(results, products, plots)`` also sets products and plots (either may be
  left out or ``None``: ``(results,)``, ``(results, products)``);
- ``None`` means no results;
- anything else is an error that names the type.

Raising ``workflow.Retry(delay=...)`` asks for another attempt later without counting
this one as a failure.
"""

from __future__ import annotations

import traceback
from typing import Any

from pydantic import ValidationError

from workflow.history import ErrorInfo
from workflow.wire import Outcome

#: How much of a traceback, stdout or stderr is kept, in characters.
TAIL = 4000


class Retry(Exception):  # noqa: N818 - users write ``raise Retry(...)``
    """Raised by a work function to ask for another attempt after ``delay`` seconds,
    without counting this attempt as a failure."""

    def __init__(self, delay: float = 0.0, reason: str = "retry requested"):
        super().__init__(reason)
        self.delay = max(0.0, float(delay))
        self.reason = reason


def tail(text: str | None, size: int = TAIL) -> str:
    """The last ``size`` characters of ``text`` (empty for None)."""
    if not text:
        return ""
    return text if len(text) <= size else "…" + text[-size:]


def failure(kind: str, message: str, trace: str | None = None) -> Outcome:
    """A failed outcome with an error of type ``kind``."""
    error = ErrorInfo(type=kind, message=message, traceback=tail(trace) or None)
    return Outcome(status="failure", error=error)


def from_exception(exc: BaseException) -> Outcome:
    """The outcome of a function that raised ``exc``."""
    if isinstance(exc, Retry):
        return Outcome(status="retry", retry_delay=exc.delay, reason=exc.reason[:200])
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return failure(type(exc).__name__, str(exc), trace)


def from_return(value: Any) -> Outcome:
    """The outcome of a function that returned ``value`` (see the module docstring)."""
    if value is None:
        return Outcome(status="success")
    if isinstance(value, dict):
        return _success(results=value)
    if isinstance(value, tuple) and 1 <= len(value) <= 3:
        results, products, plots = (*value, None, None)[:3]
        problems = [
            f"{name} is {type(item).__name__}"
            for name, item, kind in (("results", results, dict), ("products", products, list),
                                     ("plots", plots, list))
            if item is not None and not isinstance(item, kind)
        ]  # fmt: skip
        if problems:
            return failure("TypeError", "a returned (results, products, plots) tuple needs "
                           f"a dict and two lists: {', '.join(problems)}")  # fmt: skip
        bad = [p for p in [*(products or []), *(plots or [])] if not isinstance(p, str)]
        if bad:
            return failure("TypeError", "products and plots are lists of file paths (str)")
        return _success(results=results, products=products, plots=plots)
    return failure(
        "TypeError",
        f"the function returned {type(value).__name__}; return a dict of results, a "
        "(results, products, plots) tuple, or None",
    )


def _success(**fields: Any) -> Outcome:
    """A successful outcome. Results that are not JSON yet (numbers as keys, numpy
    values: ``child.call`` makes them plain JSON data later) are kept unchecked."""
    try:
        return Outcome(status="success", **fields)
    except ValidationError:
        return Outcome.model_construct(status="success", **fields)
