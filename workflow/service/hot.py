"""The runners' hot calls, answered without FastAPI's per-request machinery.

A fleet of runners sends a withdraw and a batch of outcomes every few works. FastAPI's
routing and dependency solving cost more per request than the bookkeeping itself, so
this middleware answers the routes declared hot (``workflow.service.dispatch``) first:
the same request models, the same answers and the same error bodies (the edge has
checked the token, its role and the body already). A small request runs right on the
event loop when the store can take it at once (``Store.promptly``); anything else runs
in the thread pool, as FastAPI runs it. The routes stay declared in FastAPI, which
documents them and answers them when the middleware is off (``WORKFLOW_FAST_PATHS=0``).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl

import orjson
from anyio import to_thread
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from workflow import jsonsafe
from workflow.errors import Unauthorized, WorkflowError, WouldWait
from workflow.service.access import OPEN
from workflow.service.dispatch import Hot
from workflow.service.errors import invalid_body, overflow

_JSON = [(b"content-type", b"application/json")]
#: No answer yet (an answer may be any JSON value, null included).
_NOT_YET = object()
#: Requests for at most this many works may run on the event loop (see _answer).
PROMPT = 20


class HotPaths:
    """ASGI middleware: answers the hot ``routes``, passes everything else on."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Hot]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope.get("method", ""), scope.get("path", "")))
        if scope["type"] != "http" or route is None:
            await self.app(scope, receive, send)
            return
        status, body = await self._answer(route, scope, receive)
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, route: Hot, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        state = scope["app"].state
        try:
            # The edge checked the token before the body was read (workflow.service.edge)
            # and left the caller; none here means the edge is missing: refuse.
            caller = scope.get("state", {}).get("caller", OPEN)
            if state.settings.keyring and caller is OPEN:
                raise Unauthorized("no caller was established for this request", field="token")
            try:
                options = _options(route, scope)
                request = _validated(route.model, await _body(receive))
            except _Invalid as exc:
                return 422, orjson.dumps(invalid_body(exc.errors, exc.model))
            reply: Any = _NOT_YET
            if _size(request) <= PROMPT:
                # Small enough to run here, on the event loop, when the store can start
                # at once: that saves two thread hand-offs, a good part of a request.
                # Should another writer hold the store, WouldWait: wait in a thread.
                with state.buckets.store.promptly() as prompt, suppress(WouldWait):
                    if prompt:
                        reply = route.call(state.buckets, request, caller, options)
            if reply is _NOT_YET:
                reply = await to_thread.run_sync(route.call, state.buckets, request, caller,
                                                 options)  # fmt: skip
            reply = await route.then(reply, request, caller, state.waiting, receive)
            return 200, jsonsafe.dumps(reply)
        except WorkflowError as exc:
            return exc.status_code, orjson.dumps(exc.to_dict())
        except OverflowError as exc:
            return 422, orjson.dumps(overflow(exc))


class _Invalid(Exception):
    """A request's query or body (``place``) does not fit its model: pydantic's errors,
    located as FastAPI locates them."""

    def __init__(self, exc: ValidationError, place: str, model: type[BaseModel]):
        self.errors = [{**e, "loc": (place, *e["loc"])} for e in exc.errors()]
        self.model = model  # whose fields an unknown name is compared with


def _validated(model: type[BaseModel], body: bytes) -> BaseModel:
    """The request body as ``model``.

    Raises:
        _Invalid: it does not fit.
    """
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _Invalid(exc, "body", model) from None


def _options(route: Hot, scope: Scope) -> BaseModel | None:
    """The query's options, for a route that takes some.

    Raises:
        _Invalid: they do not fit the route's model.
    """
    if route.options is None:
        return None
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                           keep_blank_values=True))  # fmt: skip
    try:
        return route.options.model_validate(query)
    except ValidationError as exc:
        raise _Invalid(exc, "query", route.options) from None


def _size(request: BaseModel) -> int:
    """How many works a request is for: the works it lists, the outcomes it reports and
    the works it claims."""
    listed = getattr(request, "works", None) or getattr(request, "complete", None) or []
    claim = getattr(request, "withdraw", request)
    # A deposit's body may be anything JSON: the verb refuses what is not a list of works.
    return (len(listed) if isinstance(listed, list) else 0) + int(getattr(claim, "limit", 0))


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)

