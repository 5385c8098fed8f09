"""Works as older CHIME/FRB clients write them (``chime-frb-api`` 3.x, and CHIME's own
documentation): accepted, with their fields mapped onto ours.

- A ``null`` where our field has a default (``user: null``, ``site: null``,
  ``creation: null``, ...) means the default.
- ``archive: true`` means the archive settings by default; ``archive: false`` that
  nothing is archived (``config.archive``: no results, products and plots bypassed).
- ``path``, ``group`` and ``precursors`` have no counterpart here (no working folder,
  group permissions or dependencies between works); they are kept as sent under
  ``legacy``, shown with the work, instead of being refused.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

#: Fields of older clients kept as sent under ``legacy``.
KEPT = ("path", "group", "precursors")
#: Fields of older clients that ``upgrade`` maps or keeps.
OLDER = (*KEPT, "archive")
#: ``archive: false``: nothing of the work is archived.
NOTHING_ARCHIVED = {"results": False, "products": "bypass", "plots": "bypass"}


def upgrade(data: Any, model: type[BaseModel]) -> Any:
    """``data`` (a work as received) with older clients' fields mapped onto ``model``'s.
    Runs on every validation of a work, so a current work passes through untouched."""
    if not isinstance(data, dict):
        return data
    refuses = _refusing_null(model)
    nulls = [name for name, value in data.items() if value is None and name in refuses]
    if not nulls and not any(name in data for name in OLDER):
        return data
    data = {name: value for name, value in data.items() if name not in nulls}
    kept = {name: data.pop(name) for name in KEPT if name in data}
    if "archive" in data:
        archive = data.pop("archive")
        if archive is False:
            config = dict(data.get("config") or {})
            config["archive"] = {**NOTHING_ARCHIVED, **(config.get("archive") or {})}
            data["config"] = config
        elif archive is not True:
            kept["archive"] = archive
    if kept:
        data["legacy"] = {**(data.get("legacy") or {}), **kept}
    return data


@functools.cache
def _refusing_null(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that take no ``null`` (worked out once per model)."""
    return frozenset(name for name, field in model.model_fields.items() if not _nullable(field))


def _nullable(field: FieldInfo) -> bool:
    annotation = field.annotation
    if annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(annotation)
    return False
