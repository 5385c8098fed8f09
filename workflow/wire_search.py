"""The wire shapes of a results search: the ``Search`` in plain terms, and its ``Page``
(the rest of the wire shapes: ``workflow.wire``, which gives these too)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflow.problems import invalid
from workflow.work import MAX_INT, Int64

Query = dict[str, Any]

#: Most works in one page of a search.
MAX_PAGE = 1000
#: Fields a search may sort on (every backend indexes them).
SORT_FIELDS = frozenset({"id", "pipeline", "status", "priority", "creation", "start", "stop",
                         "attempt", "site", "user"})  # fmt: skip


class Search(BaseModel):
    """A results search in plain terms; every field narrows it. Over HTTP these are the
    query parameters of ``GET /results/works`` (``tag`` for ``tags``)."""

    model_config = ConfigDict(populate_by_name=True, allow_inf_nan=False)

    pipeline: list[str] = Field(default_factory=list)
    status: list[Literal["success", "failure", "cancelled"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, alias="tag")
    event: list[Int64] = Field(default_factory=list)
    site: str | None = None
    user: str | None = None
    #: Created at or after this unix time.
    since: float | None = None
    #: Created before this unix time.
    until: float | None = None
    #: Every word appears in parameters, results, tags, error messages or provenance.
    text: str | None = Field(default=None, max_length=500)
    sort: str = "creation"
    order: Literal["asc", "desc"] = "desc"
    skip: int = Field(default=0, ge=0, le=MAX_INT)
    limit: int = Field(default=50, ge=0, le=MAX_PAGE)

    def query(self) -> Query:
        """The search as a store query."""
        query: Query = {}
        for name in ("pipeline", "status", "tags", "event"):
            values = getattr(self, name)
            if values:
                query[name] = {"$in": list(values)}
        for name in ("site", "user"):
            if getattr(self, name):
                query[name] = getattr(self, name)
        span = {op: t for op, t in (("$gte", self.since), ("$lt", self.until)) if t is not None}
        if span:
            query["creation"] = span
        return query

    @field_validator("sort")
    @classmethod
    def _sortable(cls, value: str) -> str:
        if value not in SORT_FIELDS:
            raise ValueError(f"cannot sort on {value!r}; use one of "
                             f"{', '.join(sorted(SORT_FIELDS))}")  # fmt: skip
        return value

    def order_by(self) -> list[tuple[str, int]]:
        """The sort as a store sort."""
        return [(self.sort, -1 if self.order == "desc" else 1)]

    def params(self) -> dict[str, Any]:
        """The search as the query parameters of ``GET /results/works``."""
        return self.model_dump(by_alias=True, exclude_defaults=True)


class Page(BaseModel):
    """One page of a search, with the number of matches."""

    total: int
    skip: int
    limit: int
    items: list[dict[str, Any]]


def search(**params: Any) -> Search:
    """A ``Search`` from keyword arguments, refusing a wrong one naming it.

    Raises:
        InvalidWork: a value out of range, or an unknown name.
    """
    try:
        return Search.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        raise invalid(exc, "search", Search) from exc
