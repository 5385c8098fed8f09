"""Domain errors to HTTP replies, in one place: a JSON body naming the field and reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from workflow.errors import WorkflowError


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(WorkflowError, _workflow_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OverflowError, _overflow)  # type: ignore[arg-type]


async def _workflow_error(request: Request, exc: WorkflowError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(invalid_body(exc.errors()), status_code=422)


def invalid_body(errors: Sequence[Any]) -> dict[str, Any]:
    """The 422 body for pydantic's ``errors()`` of a request (locations from ``body``)."""
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": ("body",), "msg": "invalid"}
    field = _location(tuple(first.get("loc", ())))
    reason = first.get("msg", "invalid")
    if first.get("type") == "json_invalid":
        field, reason = "body", f"malformed JSON: {first.get('ctx', {}).get('error', reason)}"
        errors = [{"loc": ("body",), "msg": reason}]
    detail = [{"field": _location(tuple(e.get("loc", ()))), "reason": e.get("msg")}
              for e in errors]  # fmt: skip
    return {"error": "InvalidWork", "message": f"{field}: {reason}", "field": field,
            "detail": detail}  # fmt: skip


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
