"""CHIME/FRB's results API (``/results`` of ``workflow-core``): store finished works,
replace and delete them, view and count them by Mongo-style filters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from workflow.errors import InvalidWork
from workflow.filters import apply_projection, check_filter, check_projection
from workflow.service.access import needs, who
from workflow.service.chime_buckets import Works
from workflow.service.results_api import Verbs
from workflow.wire import CountRequest, View

router = APIRouter(tags=["results"])


@router.post("/results", **needs("runner"), summary="Store finished works (CHIME transfer)")
def deposit(results: Verbs, works: Works, request: Request) -> dict[str, int]:
    return results.deposit(works, user=who(request)) if works else {}


@router.put("/results", **needs("operator"), summary="Replace finished works by id (CHIME)")
def update(results: Verbs, works: Works, request: Request) -> dict[str, int]:
    return results.update(works, by=who(request))


@router.delete("/results", **needs("admin"),
               summary="Delete finished works: ?PIPELINE=ID&PIPELINE=ID (CHIME)")
def delete(results: Verbs, request: Request) -> dict[str, int]:
    wanted: dict[str, list[str]] = {}
    for pipeline, id in request.query_params.multi_items():
        wanted.setdefault(pipeline, []).append(id)
    if not wanted:
        raise InvalidWork("name the works to delete as ?PIPELINE=ID", field="query")
    out = {}
    for pipeline, ids in wanted.items():
        found = results.view({"pipeline": pipeline, "id": {"$in": ids}})
        out[pipeline] = results.delete([doc["id"] for doc in found])
    return out


@router.post("/view", **needs("viewer"),
             summary="Finished works matching a Mongo-style filter (CHIME)")
def view(results: Verbs, body: View) -> list[dict[str, Any]]:
    query = check_filter(body.query)
    projection = check_projection(body.projection)
    docs = results.view(query, skip=body.skip, limit=body.limit or None)
    return [apply_projection(doc, projection) for doc in docs]


@router.post("/view/count", **needs("viewer"), summary="How many finished works match (CHIME)")
def count(results: Verbs, body: CountRequest) -> int:
    return results.count(check_filter(body.query))


@router.get("/status", **needs("viewer"), summary="Finished works per pipeline (CHIME)")
def status(results: Verbs) -> dict[str, int]:
    return results.tally()
