"""Every error workflow raises, under one root.

Each class's docstring is its default message. The service maps classes to HTTP
status codes in one place (``workflow.service.errors``) and the HTTP client maps
them back by name, so a caller sees the same exception in-process and over HTTP.
"""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """Something went wrong in workflow."""

    status_code = 500

    def __init__(self, message: str | None = None, *, field: str | None = None, **details: Any):
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        self.field = field
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the service answers with."""
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidWork(WorkflowError):
    """The request is invalid."""

    status_code = 422


class FilterRejected(InvalidWork):
    """The query filter is not allowed."""


class InvalidGraph(InvalidWork):
    """The workflow graph is invalid."""


class GraphFailed(WorkflowError):
    """A node of the graph failed and no ``on_error`` link handled it."""

    status_code = 422


class LimitExceeded(WorkflowError):
    """The request is larger than a configured limit."""

    status_code = 413


class ResultsTooLarge(LimitExceeded):
    """The results are larger than the configured limit."""


class NotJson(WorkflowError):
    """A body declared as something other than JSON: every operation's body is JSON."""

    status_code = 415


class TooManyStreams(WorkflowError):
    """Opening a live stream would pass a configured limit: the streams one token (or,
    on an open server, one client) may have open, or the server's in all."""

    status_code = 429


class NotFound(WorkflowError):
    """No work with that id."""

    status_code = 404


class TransitionConflict(WorkflowError):
    """The work is not in the state the change expects (stale attempt or status)."""

    status_code = 409


class DuplicateWork(TransitionConflict):
    """A different work with that id exists already."""


class CountChanged(TransitionConflict):
    """More works match now than were confirmed; nothing was done."""


class Unauthorized(WorkflowError):
    """A valid access token is required."""

    status_code = 401


class Forbidden(WorkflowError):
    """The access token does not allow this action, or a file lies outside the archive."""

    status_code = 403


class StoreUnavailable(WorkflowError):
    """The store cannot be reached."""

    status_code = 503


class WouldWait(StoreUnavailable):
    """A write asked to be prompt found the store busy; it changed nothing, and the
    caller runs it again where waiting does no harm."""


class ServerUnreachable(WorkflowError):
    """The workflow server cannot be reached."""

    status_code = 503


class ConfigurationError(WorkflowError):
    """The configuration is invalid."""


def by_name(name: str) -> type[WorkflowError]:
    """Return the error class called ``name``, or ``WorkflowError`` for unknown names.

    Args:
        name: A class name as found in the ``error`` key of a service reply.

    Returns:
        The matching subclass of ``WorkflowError``.
    """
    found = _REGISTRY.get(name)
    return found if found is not None else WorkflowError


def _subclasses(cls: type[WorkflowError]) -> list[type[WorkflowError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


_REGISTRY = {cls.__name__: cls for cls in _subclasses(WorkflowError)}
