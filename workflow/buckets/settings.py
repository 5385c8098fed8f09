"""Per-pipeline settings: defaults for new deposits, and whether the pipeline is paused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflow.work import ActionEntry, invalid

#: Changes an operator may make to a pipeline's settings.
CHANGEABLE = ("defaults", "paused")
#: Changes of a pipeline's settings kept in its history, newest last.
HISTORY = 20
#: Work fields a pipeline may give defaults for.
DEFAULTABLE = ("priority", "retries", "timeout", "backoff")


class Defaults(BaseModel):
    """Values applied to a new deposit that does not set them itself."""

    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=1, le=5)
    retries: int | None = Field(default=None, ge=0, le=5)
    timeout: int | None = Field(default=None, ge=1, le=259200)
    backoff: float | None = Field(default=None, ge=0, le=86400)


class PipelineSettings(BaseModel):
    """What an operator set for one pipeline."""

    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    paused: bool = False
    history: list[ActionEntry] = Field(default_factory=list, max_length=HISTORY)


def parse_settings(raw: Any, where: str = "settings") -> PipelineSettings:
    """Validate ``raw`` as pipeline settings, raising ``InvalidWork`` naming the field."""
    try:
        return PipelineSettings.model_validate(raw or {})
    except ValidationError as exc:
        raise invalid(exc, where) from exc


def with_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the pipeline ``defaults`` filled in where ``raw`` has no value."""
    filled = dict(raw)
    for name in DEFAULTABLE:
        if filled.get(name) is None and defaults.get(name) is not None:
            filled[name] = defaults[name]
    return filled
