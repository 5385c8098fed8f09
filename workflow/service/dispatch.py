"""The runners' hot routes, declared once and answered two ways with the same code.

A route declared here (``Fast.post``) is a function of the bucket verbs, the validated
request body and the caller, returning what the reply holds. FastAPI serves it like any
route, which documents it; the ``HotPaths`` middleware (``workflow.service.hot``)
answers it first, without FastAPI's per-request machinery, unless the server runs with
``WORKFLOW_FAST_PATHS=0``. Either way the same model checks the body, the edge has
checked the token and the role the route declares, and errors get the same bodies.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from workflow import jsonsafe
from workflow.service.access import OPEN, Caller, needs
from workflow.tokens import Role

#: A hot route's answer: (bucket verbs, request body, caller) -> the reply's content.
Answer = Callable[[Any, Any, Caller], Any]


def json_reply(content: Any) -> Response:
    """A JSON response written by orjson (``jsonsafe.dumps``), skipping FastAPI's slower
    encoder; whatever is stored can be written."""
    return Response(jsonsafe.dumps(content), media_type="application/json")


@dataclass(frozen=True)
class Hot:
    """A hot route: the model of its body and its answer."""

    model: type[BaseModel]
    answer: Answer


class Fast:
    """The hot routes of one router."""

    def __init__(self, router: APIRouter):
        self.router = router
        self.routes: dict[str, Hot] = {}

    def post(self, path: str, *, role: Role, summary: str) -> Callable[[Answer], Answer]:
        """Declare ``POST path``: the decorated answer's ``body`` annotation is the model
        of the request body."""

        def declare(answer: Answer) -> Answer:
            model = get_type_hints(answer)["body"]

            def endpoint(request: Request, body: BaseModel) -> Response:
                caller = getattr(request.state, "caller", OPEN)
                return json_reply(answer(request.app.state.buckets, body, caller))

            endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
                inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
                inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model),
            ], return_annotation=Response)  # fmt: skip
            endpoint.__name__ = endpoint.__qualname__ = answer.__name__
            endpoint.__doc__ = answer.__doc__
            self.router.post(path, **needs(role), summary=summary)(endpoint)
            self.routes[path] = Hot(model, answer)
            return answer

        return declare

    def table(self, prefix: str) -> dict[tuple[str, str], Hot]:
        """The hot routes by (method, full path), for ``HotPaths``."""
        return {("POST", prefix + path): hot for path, hot in self.routes.items()}
