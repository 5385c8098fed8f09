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

import types
import typing
from typing import Any

from pydantic.fields import FieldInfo

#: Fields of older clients kept as sent under ``legacy``.
KEPT = ("path", "group", "precursors")
#: ``archive: false``: nothing of the work is archived.
NOTHING_ARCHIVED = {"results": False, "products": "bypass", "plots": "bypass"}


def upgrade(data: Any, fields: dict[str, FieldInfo]) -> Any:
    """``data`` (a work as received) with older clients' fields mapped onto ``fields``."""
    if not isinstance(data, dict):
        return data
    data = {k: v for k, v in data.items()
            if not (v is None and k in fields and not _nullable(fields[k]))}  # fmt: skip
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


def _nullable(field: FieldInfo) -> bool:
    annotation = field.annotation
    if annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(annotation)
    return False
