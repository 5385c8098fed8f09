"""A pipeline configuration: CHIME's v2 YAML format, checked, and its ``${{ }}``
expressions.

A configuration names steps in stages; each step is one work, or one per combination
of its ``matrix``, deposited when its stage starts. Expressions, anywhere in a step's
``work``: ``${{ matrix.KEY }}`` (and ``matrix.KEY.SUB`` into a mapping),
``${{ pipeline.STEP.results.KEY }}`` (the results of that earlier step: its first
successful work's, in matrix order) and, in ``if:``, ``${{ pipeline.STEP.status ==
'success' }}`` (or ``!=``). A string that is one expression becomes the value; an
expression inside a longer string is spliced in as text. A matrix value is a list,
``{range: [start, stop, step]}`` (Python's ``range``), or one expression giving a list
at run time.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflow.errors import InvalidWork
from workflow.problems import invalid

#: One ``${{ ... }}`` expression.
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_PATH = r"[A-Za-z_][\w-]*(?:\.[A-Za-z_0-9][\w-]*)*"
_MATRIX = re.compile(rf"^matrix\.({_PATH})$")
_RESULTS = re.compile(rf"^pipeline\.([\w-]+)\.results(?:\.({_PATH}))?$")
_STATUS = re.compile(r"^pipeline\.([\w-]+)\.status\s*(==|!=)\s*'([a-z]+)'$")
#: Most works one step's matrix may make.
MOST_COMBINATIONS = 10_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Schedule(Strict):
    """Spawn the pipeline again on a cron (five fields, read in ``timezone``), ``lives``
    times (-1: forever)."""

    cronspec: str = Field(min_length=9, max_length=200)
    lives: int = Field(default=-1, ge=-1)
    timezone: str = Field(default="UTC", max_length=64)


class Step(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w-]+$")
    stage: int = Field(default=1, ge=0, le=1000)
    runs_on: str | list[str] | None = None
    services: list[Any] | None = None
    replicate_deployments: bool | None = None
    if_: str = Field(default="success", alias="if", max_length=500)
    matrix: dict[str, Any] | None = None
    success_threshold: float = Field(default=1.0, ge=0.0, le=1.0)
    work: dict[str, Any] = Field(default_factory=dict)

    @field_validator("if_")
    @classmethod
    def _condition(cls, value: str) -> str:
        if value in ("success", "failure", "always"):
            return value
        found = EXPRESSION.fullmatch(value.strip())
        if found is None or not _STATUS.match(found.group(1)):
            raise ValueError("if is success, failure, always or "
                             "${{ pipeline.STEP.status == 'success' }}")  # fmt: skip
        return value.strip()


class Body(Strict):
    runs_on: str | list[str] | None = None
    services: list[Any] | None = None
    matrix: dict[str, Any] | None = None
    steps: list[Step] = Field(min_length=1, max_length=500)


class PipelineConfig(Strict):
    """A v2 configuration, as deployed."""

    version: Literal["2"]
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    defaults: dict[str, Any] = Field(default_factory=dict)
    schedule: Schedule | None = None
    deployments: list[dict[str, Any]] | None = None
    pipeline: Body

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if value in (2, 2.0) else value

    def stages(self) -> list[int]:
        return sorted({step.stage for step in self.pipeline.steps})


def parse_config(raw: Any) -> PipelineConfig:
    """A checked configuration from a parsed YAML document.

    Raises:
        InvalidWork: not a v2 configuration, naming the field and the reason: a
            missing field, two steps of one name, an expression naming a step that does
            not come earlier, a matrix key both in the pipeline's and a step's matrix.
    """
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc, "", PipelineConfig) from exc
    stage_of: dict[str, int] = {}
    shared = set((config.pipeline.matrix or {}).keys())
    for key, value in (config.pipeline.matrix or {}).items():
        check_matrix_value(value, f"pipeline.matrix.{key}")
    for n, step in enumerate(config.pipeline.steps):
        where = f"pipeline.steps.{n}"
        if step.name in stage_of:
            raise InvalidWork(f"{where}.name: two steps are called {step.name!r}",
                              field=f"{where}.name")  # fmt: skip
        both = shared & set((step.matrix or {}).keys())
        if both:
            raise InvalidWork(f"{where}.matrix: {', '.join(sorted(both))} also in the "
                              "pipeline's matrix", field=f"{where}.matrix")  # fmt: skip
        for key, value in (step.matrix or {}).items():
            check_matrix_value(value, f"{where}.matrix.{key}")
        known = 1  # the works its matrix makes, as far as they are known before it runs
        for value in {**(config.pipeline.matrix or {}), **(step.matrix or {})}.values():
            known *= len(value) if isinstance(value, list) else \
                len(range(*value["range"])) if isinstance(value, dict) else 1  # fmt: skip
        if known > MOST_COMBINATIONS:
            raise InvalidWork(f"{where}.matrix: makes {known} works, more than "
                              f"{MOST_COMBINATIONS}", field=f"{where}.matrix")  # fmt: skip
        earlier = {name for name, stage in stage_of.items() if stage < step.stage}
        for text in expressions([step.work, step.matrix, step.if_]):
            named = _step_named(text)
            if named is False:
                raise InvalidWork(f"{where}: ${{{{ {text} }}}} is not an expression this "
                                  "knows (matrix.KEY, pipeline.STEP.results.KEY, "
                                  "pipeline.STEP.status == '...')", field=where)  # fmt: skip
            if named is not None and named not in earlier:
                raise InvalidWork(f"{where}: ${{{{ {text} }}}} names {named!r}, which is not "
                                  "a step of an earlier stage", field=where)  # fmt: skip
        stage_of[step.name] = step.stage
    return config


def check_matrix_value(value: Any, where: str) -> None:
    if isinstance(value, list) and value:
        return
    if isinstance(value, str) and EXPRESSION.fullmatch(value.strip()):
        return
    if isinstance(value, dict) and set(value) == {"range"}:
        bounds = value["range"]
        if (isinstance(bounds, list) and 2 <= len(bounds) <= 3
                and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                and (len(bounds) < 3 or bounds[2] != 0)):  # fmt: skip
            return
    raise InvalidWork(f"{where}: a matrix value is a non-empty list, {{range: [start, stop, "
                      "step]}} or ${{ pipeline.STEP.results.KEY }}", field=where)  # fmt: skip


def expressions(value: Any) -> list[str]:
    """Every expression inside ``value`` (strings in lists and mappings)."""
    if isinstance(value, str):
        return [m.group(1) for m in EXPRESSION.finditer(value)]
    if isinstance(value, dict):
        return [e for item in value.values() for e in expressions(item)]
    if isinstance(value, list):
        return [e for item in value for e in expressions(item)]
    return []


def _step_named(text: str) -> str | None | Literal[False]:
    """The step an expression names; None for a matrix one; False for an unknown one."""
    if _MATRIX.match(text):
        return None
    found = _RESULTS.match(text) or _STATUS.match(text)
    return found.group(1) if found else False


def evaluate(text: str, matrix: dict[str, Any], steps: dict[str, dict[str, Any]]) -> Any:
    """The value of one expression, given the combination ``matrix`` and what earlier
    steps did (``{name: {"status", "results"}}``).

    Raises:
        InvalidWork: it names a value that is not there.
    """
    if found := _MATRIX.match(text):
        return _dig({"matrix": matrix}, ["matrix", *found.group(1).split(".")], text)
    if found := _RESULTS.match(text):
        step = steps.get(found.group(1)) or {}
        path = found.group(2).split(".") if found.group(2) else []
        return _dig(step.get("results") or {}, path, text)
    if found := _STATUS.match(text):
        status = (steps.get(found.group(1)) or {}).get("status")
        return (status == found.group(3)) == (found.group(2) == "==")
    raise InvalidWork(f"${{{{ {text} }}}} is not an expression this knows", field="expression")


def _dig(value: Any, path: list[str], text: str) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise InvalidWork(f"${{{{ {text} }}}}: there is no {part!r}", field="expression")
    return value


def substitute(value: Any, matrix: dict[str, Any], steps: dict[str, dict[str, Any]]) -> Any:
    """``value`` with every expression replaced (see the module docstring)."""
    if isinstance(value, str):
        whole = EXPRESSION.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1), matrix, steps)
        return EXPRESSION.sub(lambda m: str(evaluate(m.group(1), matrix, steps)), value)
    if isinstance(value, dict):
        return {k: substitute(v, matrix, steps) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(item, matrix, steps) for item in value]
    return value


def combinations(matrix: dict[str, Any], steps: dict[str, dict[str, Any]]
                 ) -> list[dict[str, Any]]:  # fmt: skip
    """Every combination of ``matrix``'s values (one empty one without a matrix), the
    keys in the order written, the last varying fastest.

    Raises:
        InvalidWork: a run-time value is not a non-empty list, or more than
            ``MOST_COMBINATIONS`` combinations.
    """
    out: list[dict[str, Any]] = [{}]
    for key, raw in matrix.items():
        if isinstance(raw, dict):
            values: Any = list(range(*raw["range"]))
        elif isinstance(raw, str):
            values = substitute(raw, {}, steps)
        else:
            values = raw
        if not isinstance(values, list) or not values:
            raise InvalidWork(f"matrix.{key}: {raw!r} gave {values!r}, not a non-empty list",
                              field=f"matrix.{key}")  # fmt: skip
        out = [{**combo, key: value} for combo in out for value in values]
        if len(out) > MOST_COMBINATIONS:
            raise InvalidWork(f"the matrix makes more than {MOST_COMBINATIONS} works",
                              field="matrix")  # fmt: skip
    return out
