"""Domain errors to HTTP replies, in one place: a JSON body naming the field and reason."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from workflow import wire
from workflow.errors import WorkflowError
from workflow.problems import described
from workflow.work import Work


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(WorkflowError, _workflow_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OverflowError, _overflow)  # type: ignore[arg-type]


async def _workflow_error(request: Request, exc: WorkflowError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(invalid_body(exc.errors(), _body_model(request)), status_code=422)


def _body_model(request: Request) -> type[BaseModel] | None:
    """The model of the route's request body, if it has one (a misspelt field then gets
    the closest of its fields, not of any request's)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def invalid_body(errors: Sequence[Any], model: type[BaseModel] | None = None) -> dict[str, Any]:
    """The 422 body for pydantic's ``errors()`` of a request (locations from ``body``),
    naming every field; an unknown one gets the closest field of ``model`` (else of
    any request or work)."""
    errors = list(errors)
    if errors and errors[0].get("type") == "json_invalid":
        reason = f"malformed JSON: {errors[0].get('ctx', {}).get('error', errors[0].get('msg'))}"
        errors = [{"loc": ("body",), "msg": reason}]
    return described(errors, "", model, _vocabulary()).to_dict()


@functools.cache
def _vocabulary() -> list[str]:
    """Every field name of a work and of a request."""
    models: list[type[BaseModel]] = [Work]
    models += [m for m in vars(wire).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    return sorted({name for model in models for name in model.model_fields})


async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
    # The request models bound the numbers they know; this catches one in a filter or
    # anywhere else that the store cannot hold (SQLite and BSON keep 64-bit integers).
    return JSONResponse(overflow(exc), status_code=422)


def overflow(exc: OverflowError) -> dict[str, Any]:
    """The 422 body for a number the store cannot hold."""
    return {"error": "InvalidWork", "field": "number",
            "message": f"a number is out of range: the store keeps 64-bit integers ({exc})"}


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    body = {"error": "HTTPError", "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
