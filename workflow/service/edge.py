"""The edge: the first thing every request meets, before any route reads a byte of it.

In this order, for every route (the runners' hot calls and FastAPI's own alike):

1. The token: the route the request is for is found as the router will find it, and the
   token is checked against the role that route declares (``access.needs``). A caller
   without the role gets 401 or 403 before its body is read; the caller found is kept
   in the request's state for the route to record names under.
2. The query string and path: a NUL character is refused.
3. The body's size, counted on the bytes actually received, whatever ``Content-Length``
   or ``Transfer-Encoding`` claim: over ``WORKFLOW_MAX_BODY`` gets 413 and the rest is
   not read.
4. The body's type and content: a ``Content-Type`` other than JSON gets 415 (a form
   post would reach a route as no body at all); then ``jsonsafe.parse``: malformed
   JSON, NaN or Infinity, numbers beyond a double's range, NUL characters and nesting
   deeper than ``WORKFLOW_MAX_DEPTH`` get a 4xx naming the field.

Only then is the request handed on, its body replayed from memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow import jsonsafe
from workflow.errors import InvalidWork, LimitExceeded, NotJson, WorkflowError
from workflow.service import access

#: A request's headers, by lower-case name (the last of a repeated one).
Headers = dict[bytes, bytes]


class Edge:
    """ASGI middleware: token, size and content checks before any route runs.

    Args:
        app: The application to hand checked requests to.
        max_body: Largest body in bytes.
        max_depth: Deepest nesting of a JSON body.
    """

    def __init__(self, app: ASGIApp, max_body: int, max_depth: int = jsonsafe.MAX_DEPTH):
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth
        self._table: RoleTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_text(scope)
            role = self._role(scope["app"], scope)
            if role is None:
                # No operation takes it (the UI's files, the API docs, a 404): nothing
                # reads its body, so neither does the edge.
                await self.app(scope, receive, send)
                return
            headers = dict(scope["headers"])
            self._check_caller(scope, headers, role)
            body = await self._read(headers, receive)
        except WorkflowError as exc:
            await refuse(send, exc)
            return
        if body is None:  # the client went away
            return
        if body:
            try:
                _check_type(headers)
                jsonsafe.parse(body, self.max_depth)
            except WorkflowError as exc:
                await refuse(send, exc)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _check_caller(self, scope: Scope, headers: Headers, role: str) -> None:
        """Check the token against ``role``, the role of the request's route."""
        if role == access.PUBLIC:
            return
        caller = access.check(scope["app"].state.settings, role,  # type: ignore[arg-type]
                              _text(headers.get(b"x-access-token")),
                              _text(headers.get(b"authorization")))  # fmt: skip
        scope.setdefault("state", {})["caller"] = caller

    def _role(self, app: Any, scope: Scope) -> str | None:
        """The role the request's route declares; None for what no operation takes
        (the web UI's files, the API docs, or a 404): none of those reads a body."""
        if self._table is None:
            self._table = RoleTable(app.state.roles)
        return self._table.find(scope["method"], scope["path"])

    async def _read(self, headers: Headers, receive: Receive) -> bytes | None:
        """The whole body, counting the bytes received; None if the client left."""
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise self._too_large()
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _too_large(self) -> LimitExceeded:
        return LimitExceeded(f"the request body is larger than the limit of {self.max_body} "
                             "bytes (WORKFLOW_MAX_BODY)", field="body", limit=self.max_body)


class RoleTable:
    """Which role a request needs, found from its method and path as the router finds
    its route: a path without parameters first, then each template in the order the
    routes were declared.

    Args:
        roles: The role of every operation by (method, path template), as
            ``access.roles`` gives it.
    """

    def __init__(self, roles: dict[tuple[str, str], str]):
        self.fixed = {key: role for key, role in roles.items() if "{" not in key[1]}
        self.templates = [(method, compile_path(path)[0], role)
                          for (method, path), role in roles.items() if "{" in path]  # fmt: skip

    def find(self, method: str, path: str) -> str | None:
        """The role needed for ``method`` on ``path``; None when no operation takes it."""
        role = self.fixed.get((method, path))
        if role is not None:
            return role
        for wanted, pattern, role in self.templates:
            if wanted == method and pattern.match(path):
                return role
        return None


def _check_type(headers: Headers) -> None:
    """A body is JSON, and says so: the routes read no other (a form's body, or one of
    no declared type, would reach them as no body at all)."""
    declared = _text(headers.get(b"content-type"))
    kind = (declared or "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        sent = f"sent as {kind}" if kind else "sent without a Content-Type"
        raise NotJson(f"the body is {sent}; send it as JSON, with "
                      "Content-Type: application/json", field="content-type")


def _check_text(scope: Scope) -> None:
    """Refuse a NUL character in the path or in a query parameter, naming it."""
    if "\x00" in scope["path"]:
        raise InvalidWork("path: a NUL character is not allowed in a path", field="path")
    raw = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name + value:
            raise InvalidWork(f"{name}: a NUL character is not allowed here", field=name)


async def refuse(send: Send, error: WorkflowError) -> None:
    """Answer with ``error``'s JSON body and close the connection: the rest of the
    request's body, if any, is never read."""
    body = orjson.dumps(error.to_dict())
    await send({"type": "http.response.start", "status": error.status_code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
