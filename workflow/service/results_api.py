"""``/results``: search finished works with plain query parameters, export a whole
search as CSV or JSON, retry what a search matches. CHIME's own routes are in
``workflow.service.chime_results``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from workflow.results import Results
from workflow.service.access import needs, who
from workflow.wire import BulkReply, Page, RetryMatching, Search

router = APIRouter(tags=["results"])


async def _results(request: Request) -> Results:
    return request.app.state.results  # type: ignore[no-any-return]


Verbs = Annotated[Results, Depends(_results)]


Searched = Annotated[Search, Query()]


@router.get("/works", **needs("viewer"),
            summary="Search finished works with plain query parameters")
def search(results: Verbs, search: Searched) -> Page:
    items, total = results.search(search)
    return Page(total=total, skip=search.skip, limit=search.limit, items=items)


@router.get("/export", **needs("viewer"),
            summary="Every finished work a search matches, as CSV or JSON")
def export(results: Verbs, search: Searched,
           format: Literal["csv", "json"] = "csv") -> StreamingResponse:  # fmt: skip
    """Newest first; the search's sort and page do not apply. A CSV starts with its
    header row, matches or not, and no cell of it starts a spreadsheet formula."""
    batches = _batches(results.export(search))
    # The first batch is read and rendered here, before the reply starts, so that a store
    # or rendering error gets an error reply; a later one can only break the reply off.
    first = next(batches, [])
    rest: Iterator[bytes]
    if format == "json":
        head, media, tail = b"[" + _json_rows(first, after=False), "application/json", b"]"
        rest = (_json_rows(batch, after=True) for batch in batches)
    else:
        head, media, tail = _csv_rows([CSV_FIELDS, *map(_csv_row, first)]), CSV_MEDIA, b""
        rest = (_csv_rows(map(_csv_row, batch)) for batch in batches)
    name = f"results.{format}"
    return StreamingResponse(_chain(head, rest, tail), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


#: Works read and rendered per piece of an export's reply.
EXPORT_BATCH = 1000
CSV_MEDIA = "text/csv; charset=utf-8"
CSV_FIELDS = ("id", "pipeline", "status", "user", "site", "tags", "event", "priority",
              "attempt", "creation", "start", "stop", "function", "command", "parameters",
              "results", "error")  # fmt: skip
#: A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV
#: Injection"); the export puts a single quote before it, which makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _batches(docs: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while batch := list(islice(docs, EXPORT_BATCH)):
        yield batch


def _chain(head: bytes, rest: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from rest
    yield tail


def _json_rows(docs: list[dict[str, Any]], *, after: bool) -> bytes:
    """``docs`` as members of a JSON array; ``after`` earlier members, with a comma."""
    body = b",".join(orjson.dumps(doc) for doc in docs)
    return b"," + body if after and body else body


def _csv_row(doc: dict[str, Any]) -> list[Any]:
    errors = [e["error"] for e in doc.get("history") or [] if e.get("error")]
    row = {**doc, "tags": ";".join(doc.get("tags") or []),
           "event": ";".join(str(e) for e in doc.get("event") or []),
           "command": " ".join(doc.get("command") or []),
           "parameters": orjson.dumps(doc.get("parameters")).decode(),
           "results": orjson.dumps(doc.get("results")).decode(),
           "error": f"{errors[-1].get('type')}: {errors[-1].get('message')}" if errors else ""}
    return [_cell(row.get(f)) for f in CSV_FIELDS]


def _cell(value: Any) -> Any:
    """A value as a CSV cell: a number as it is, any other value as text, behind a single
    quote if a spreadsheet would take it for a formula."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as CSV with every cell in double quotes (and quotes in it doubled), so that
    no separator or line break inside a cell can start another cell."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerows(rows)
    return out.getvalue().encode()


@router.post("/retry", **needs("operator"),
             summary="Queue again every finished work a search matches")
def retry_matching(results: Verbs, search: Searched, request: Request,
                   body: RetryMatching) -> BulkReply:  # fmt: skip
    """Each work is retried as a new work linked to it (as ``/buckets/work/{id}/retry``
    does), with its own parameters (a graph work reusing its nodes' outputs with
    ``from_failure``); the search's sort and page do not apply."""
    return results.retry_matching(search, body.confirm, from_failure=body.from_failure,
                                  by=who(request))  # fmt: skip


@router.get("/works/{id}", **needs("viewer"), summary="One finished work with its history")
def get_work(results: Verbs, id: str) -> dict[str, Any]:
    return results.result(id)
