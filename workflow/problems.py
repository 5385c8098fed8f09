"""How a refused record or request reads: every field named, with the reason, and for a
misspelt name the closest known one ("``paramters``: unknown field; did you mean
``parameters``?").

Pydantic says what is wrong with each field; ``described`` turns its list of errors
into one ``InvalidWork`` whose message names each (the first few), whose ``field`` is
the first, and whose ``detail`` lists them all.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from workflow.errors import InvalidWork

#: Errors named in the message itself; ``detail`` has them all.
SHOWN = 5
#: Where a request's error locations start (FastAPI's, and the hot routes').
PLACES = ("body", "query", "path", "header")


def invalid(exc: ValidationError, where: str, model: type[BaseModel] | None = None
            ) -> InvalidWork:  # fmt: skip
    """``described`` for a ``ValidationError`` of ``model`` at ``where``."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return described(errors, where, model)


def described(errors: Sequence[Mapping[str, Any]], where: str = "",
              model: type[BaseModel] | None = None,
              known: Iterable[str] = ()) -> InvalidWork:  # fmt: skip
    """One ``InvalidWork`` for pydantic's ``errors``, located below ``where``: unknown
    names get the closest field of ``model`` there (else of ``known``)."""
    named = [(_field(where, e.get("loc", ())), _reason(e, model, known)) for e in errors]
    if not named:
        named = [(where or "body", "invalid")]
    shown = "; ".join(f"{field}: {reason}" for field, reason in named[:SHOWN])
    more = len(named) - SHOWN
    message = shown + (f"; and {more} more (see detail)" if more > 0 else "")
    detail = [{"field": field, "reason": reason} for field, reason in named]
    return InvalidWork(message, field=named[0][0], detail=detail)


def _field(where: str, loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in PLACES:
        parts = parts[1:] or parts
    return ".".join(part for part in (where, *parts) if part)


def _reason(error: Mapping[str, Any], model: type[BaseModel] | None, known: Iterable[str]) -> str:
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") != "extra_forbidden":
        return reason
    loc = [part for part in error.get("loc", ()) if part not in PLACES]
    names = fields_at(model, loc[:-1]) if model is not None else list(known)
    close = difflib.get_close_matches(str(loc[-1]) if loc else "", names, n=1, cutoff=0.6)
    return "unknown field" + (f"; did you mean `{close[0]}`?" if close else "")


def fields_at(model: type[BaseModel], path: Sequence[Any]) -> list[str]:
    """The field names (and aliases) of the model found at ``path`` below ``model``."""
    current: type[BaseModel] | None = model
    for part in path:
        if isinstance(part, int):
            continue  # an item of a list: the same model
        field = current.model_fields.get(str(part)) if current is not None else None
        current = _model_in(field.annotation) if field is not None else None
        if current is None:
            return []
    assert current is not None
    names = list(current.model_fields)
    names += [f.alias for f in current.model_fields.values() if f.alias]
    return names


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``Model``, ``Model | None``, ``list[Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
