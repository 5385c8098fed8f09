"""The runners' hot routes, declared once and answered two ways with the same code.

A route declared here (``Fast.post``) is a function of the bucket verbs, the validated
request body and the caller, returning what the reply holds. FastAPI serves it like any
route, which documents it; the ``HotPaths`` middleware (``workflow.service.hot``)
answers it first, without FastAPI's per-request machinery, unless the server runs with
``WORKFLOW_FAST_PATHS=0``. Either way the same model checks the body, the edge has
checked the token and the role the route declares, errors get the same bodies, and a
withdraw that found nothing and may wait is held the same way (``then``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive

from workflow import jsonsafe
from workflow.service.access import OPEN, Caller, needs
from workflow.service.waiting import WaitingRoom
from workflow.tokens import Role
from workflow.wire import Withdraw

#: A hot route's answer: (bucket verbs, request body, caller[, query options]) -> the
#: reply's content.
Answer = Callable[..., Any]
#: The withdraw a request may be held for: (request body) -> it, or None.
Holds = Callable[[Any], Withdraw | None]


def json_reply(content: Any) -> Response:
    """A JSON response written by orjson (``jsonsafe.dumps``), skipping FastAPI's slower
    encoder; whatever is stored can be written."""
    return Response(jsonsafe.dumps(content), media_type="application/json")


@dataclass(frozen=True)
class Hot:
    """A hot route: the model of its body, its answer, and the withdraw it may be held
    for when the answer has no works."""

    model: type[BaseModel]
    answer: Answer
    holds: Holds | None = None
    options: type[BaseModel] | None = None  # the model of its query, if it takes one

    def call(self, buckets: Any, body: Any, caller: Caller, options: BaseModel | None) -> Any:
        """The answer to ``body`` (and the query's ``options``, if the route takes some)."""
        if self.options is None:
            return self.answer(buckets, body, caller)
        return self.answer(buckets, body, caller, options)

    async def then(self, reply: Any, body: Any, caller: Caller, room: WaitingRoom,
                   receive: Receive) -> Any:  # fmt: skip
        """``reply``, or, when it holds no works and its withdraw may wait, the same
        reply with the works a held withdraw got (``WaitingRoom.enter``). A client that
        goes away while held ends the hold."""
        want = self.holds(body) if self.holds is not None else None
        if want is None or want.wait <= 0 or _works(reply):
            return reply
        works = await _held(room, want, caller.name, receive)
        return {**reply, "works": works} if isinstance(reply, dict) else works


class Fast:
    """The hot routes of one router."""

    def __init__(self, router: APIRouter):
        self.router = router
        self.routes: dict[str, Hot] = {}

    def post(self, path: str, *, role: Role, summary: str, holds: Holds | None = None
             ) -> Callable[[Answer], Answer]:  # fmt: skip
        """Declare ``POST path``: the decorated answer's ``body`` annotation is the model
        of the request body, and its ``options`` annotation, if it has one, the model of
        the query; ``holds`` names the withdraw a request may wait for."""

        def declare(answer: Answer) -> Answer:
            hints = get_type_hints(answer)
            model, options = hints["body"], hints.get("options")
            hot = Hot(model, answer, holds, options)

            async def endpoint(request: Request, body: BaseModel,
                               options: BaseModel | None = None) -> Response:  # fmt: skip
                caller = getattr(request.state, "caller", OPEN)
                state = request.app.state
                reply = await run_in_threadpool(hot.call, state.buckets, body, caller, options)
                reply = await hot.then(reply, body, caller, state.waiting, request.receive)
                return json_reply(reply)

            parameters = [
                inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
                inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model)]
            if options is not None:
                parameters.append(inspect.Parameter("options", inspect.Parameter.KEYWORD_ONLY,
                                                    annotation=Annotated[options, Query()]))
            endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
                parameters, return_annotation=Response)
            endpoint.__name__ = endpoint.__qualname__ = answer.__name__
            endpoint.__doc__ = answer.__doc__
            self.router.post(path, **needs(role), summary=summary)(endpoint)
            self.routes[path] = hot
            return answer

        return declare

    def table(self, prefix: str) -> dict[tuple[str, str], Hot]:
        """The hot routes by (method, full path), for ``HotPaths``."""
        return {("POST", prefix + path): hot for path, hot in self.routes.items()}


def _works(reply: Any) -> bool:
    """Whether a withdraw's (a list) or an exchange's (``{"works"}``) reply has works."""
    return bool(reply["works"] if isinstance(reply, dict) else reply)


async def _held(room: WaitingRoom, want: Withdraw, by: str | None, receive: Receive
                ) -> list[Any]:  # fmt: skip
    """The works a held withdraw gets (``WaitingRoom.enter``): none when its time is up,
    the server stops, or the client goes away meanwhile."""
    held = room.enter(want, by)
    if held is None:
        return []
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        either: set[asyncio.Future[Any]] = {held.answer, gone}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        room.leave(held)
    return [] if held.answer.cancelled() else held.answer.result()


async def _disconnect(receive: Receive) -> None:
    """Returns when the client has gone away (the body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
