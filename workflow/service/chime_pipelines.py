"""CHIME's pipelines API (``chime-api.md`` section 4), spoken by the unmodified
``workflow-core`` 1.12.3 ``configs``, ``pipelines`` and ``schedules`` commands: each
route is one call of ``workflow.pipelines``, its answer in CHIME's shapes.

A deployed configuration and its run are one record here: a "config" is shown with
the run as its only pipeline (same id). Queries arrive as JSON text in the query string
and are checked against an allow-list (``id``, ``name``, ``status``, ``pipelines``,
``config.name``; equality and ``$in``); a projection keeps or drops fields.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Body, Depends, Query, Request, Response

from workflow.errors import InvalidWork, NotFound, TransitionConflict
from workflow.pipelines import Pipelines
from workflow.service.access import needs, who
from workflow.service.dispatch import json_reply
from workflow.store.base import Doc

router = APIRouter(tags=["CHIME pipelines"])
FIELDS = ("id", "name", "status", "pipelines", "config.name")
JsonText = Annotated[str, Query(max_length=10_000)]


async def _pipelines(request: Request) -> Pipelines:
    return request.app.state.pipelines  # type: ignore[no-any-return]


Verbs = Annotated[Pipelines, Depends(_pipelines)]


def _json(text: str, field: str) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        raise InvalidWork(f"{field}: not JSON", field=field) from None
    if not isinstance(found, dict):
        raise InvalidWork(f"{field}: a JSON object", field=field)
    return found


def _query(text: str) -> dict[str, list[Any]]:
    """The query in ``text``: per allowed field, the values it may have.

    Raises:
        InvalidWork: not a JSON object, a field not allowed, an operator but ``$in``.
    """
    query: dict[str, list[Any]] = {}
    for key, wanted in _json(text, "query").items():
        if key not in FIELDS:
            raise InvalidWork(f"query.{key}: only {', '.join(FIELDS)} may be asked for",
                              field=f"query.{key}")  # fmt: skip
        allowed = wanted.get("$in") if isinstance(wanted, dict) else [wanted]
        if not isinstance(allowed, list) or (isinstance(wanted, dict) and set(wanted) != {"$in"}):
            raise InvalidWork(f"query.{key}: equality or $in only", field=f"query.{key}")
        query[key] = allowed
    return query


def _matches(doc: Doc, query: dict[str, list[Any]]) -> bool:
    for key, allowed in query.items():
        value: Any = doc.get("config", {}).get("name") if key == "config.name" else doc.get(key)
        values = value if isinstance(value, list) else [value]
        if not any(v in allowed for v in values):
            return False
    return True


def _projected(doc: Doc, projection: dict[str, Any]) -> Doc:
    """``doc`` with the fields ``projection`` keeps (``id`` always; ``a.b`` nested), or
    without those it drops."""
    kept = [k for k, v in projection.items() if v]
    if not kept:
        return {k: v for k, v in doc.items() if k not in projection}
    out: Doc = {}
    for path in ["id", *kept]:
        head, _, rest = path.partition(".")
        if head not in doc:
            continue
        if rest and isinstance(doc[head], dict):
            if rest in doc[head]:
                out.setdefault(head, {})[rest] = doc[head][rest]
        else:
            out[head] = doc[head]
    return out


def _user(run: Doc) -> str:
    """Who deployed it, else the user its works are deposited for."""
    return str(run.get("user") or run["config"].get("defaults", {}).get("user") or "")


def _config_view(run: Doc) -> Doc:
    config = run["config"]
    return {"id": run["id"], "name": run["name"], "version": "2", "pipelines": [run["id"]],
            "user": _user(run), "status": run["status"],
            "yaml": yaml.safe_dump(config, sort_keys=False),
            "deployments": config.get("deployments") or [], "services": [],
            "creation": run["creation"], "start": run["start"], "stop": run["stop"]}  # fmt: skip


def _pipeline_view(run: Doc) -> Doc:
    config = run["config"]
    steps = []
    for spec, step in zip(config["pipeline"]["steps"], run["steps"], strict=True):
        steps.append({"name": step["name"], "work_id": step["works"][0] if step["works"] else None,
                      "works": step["works"], "runs_on": spec.get("runs_on"), "services": [],
                      "status": step["status"], "stage": step["stage"],
                      "if_condition": spec.get("if", "success"), "reason": step.get("reason"),
                      "matrix": spec.get("matrix"), "evaluate_on_runtime": False,
                      "success_threshold": spec.get("success_threshold", 1.0),
                      "work": spec.get("work", {})})  # fmt: skip
    history: Doc = {str(entry["at"]): {entry["event"]: []} for entry in run.get("history", [])}
    return {"id": run["id"], "name": run["name"], "current_stage": run.get("current_stage"),
            "status": run["status"], "version": "2", "creation": run["creation"],
            "start": run["start"], "stop": run["stop"], "user": _user(run),
            "steps": steps, "pipeline": {"runs_on": config["pipeline"].get("runs_on"),
                                         "services": [], "steps": steps},
            "deployments": config.get("deployments") or [], "history": history}  # fmt: skip


def _schedule_view(doc: Doc) -> Doc:
    return {"id": doc["id"], "status": "expired" if doc["status"] == "expired" else "active",
            "lives": doc["lives"], "has_spawned": doc["has_spawned"],
            "next_time": doc.get("next_time"), "crontab": doc["cronspec"],
            "config": doc["config"], "history": doc.get("history", [])}  # fmt: skip


def _runs(pipelines: Pipelines, name: str | None, query: dict[str, list[Any]]) -> list[Doc]:
    return [run for run in pipelines.runs(name=name, limit=1000)
            if _matches({**run, "pipelines": [run["id"]]}, query)]  # fmt: skip


@router.post("/configs", **needs("operator"), summary="Deploy a configuration (CHIME)")
def deploy(pipelines: Verbs, request: Request,
           config: Annotated[dict[str, Any], Body()]) -> Response:  # fmt: skip
    config.pop("canfar_cert", None)  # CANFAR deployments are not ours to make
    made = pipelines.deploy(config, by=who(request))
    runs = [made["id"]] if made.get("kind") == "run" else []
    return json_reply({"config": made["id"], "pipelines": runs})


@router.get("/configs", **needs("viewer"), summary="Configurations or pipelines (CHIME)")
def configs(pipelines: Verbs, name: str | None = None, query: JsonText = "{}",
            projection: JsonText = "{}",
            database: Literal["configs", "pipelines"] = "configs") -> Response:  # fmt: skip
    view = _config_view if database == "configs" else _pipeline_view
    shown = _json(projection, "projection")
    return json_reply([_projected(view(run), shown)
                       for run in _runs(pipelines, name, _query(query))])  # fmt: skip


@router.get("/configs/count", **needs("viewer"), summary="Runs per configuration (CHIME)")
def count(pipelines: Verbs,
          database: Literal["configs", "pipelines"] = "configs") -> Response:  # fmt: skip
    counted: dict[str, int] = {}
    for run in pipelines.runs(limit=10_000):
        counted[run["name"]] = counted.get(run["name"], 0) + 1
    return json_reply(counted)


@router.put("/configs/cancel", **needs("operator"), summary="Stop a configuration (CHIME)")
def cancel(pipelines: Verbs, request: Request, query: JsonText = "{}",
           name: str | None = None) -> Response:  # fmt: skip
    stopped = []
    for run in _runs(pipelines, name, _query(query)):
        try:
            stopped.append(pipelines.cancel(run["id"], by=who(request))["id"])
        except TransitionConflict:
            continue  # it had ended
    if not stopped:
        return Response(status_code=304)
    return json_reply({"stopped_config": stopped[0], "stopped_pipelines": stopped})


@router.post("/configs/retry", **needs("operator"), summary="Retry a configuration (CHIME)")
def retry(pipelines: Verbs, request: Request,
          body: Annotated[dict[str, Any], Body()]) -> Response:  # fmt: skip
    id = str(body.get("id") or "")
    run = pipelines.retry(id, by=who(request))
    return json_reply({"message": f"pipeline {run['id']} retried: {run['status']}"})


@router.delete("/configs", **needs("operator"), summary="Remove ended configurations (CHIME)")
def remove(pipelines: Verbs, query: JsonText = "{}", name: str | None = None) -> Response:
    ended = [run["id"] for run in _runs(pipelines, name, _query(query))
             if run["status"] != "running"]  # fmt: skip
    if not ended:
        raise NotFound("no ended configuration matches", field="query")
    pipelines.remove(ended)
    return Response(status_code=204)


@router.post("/schedule", **needs("operator"), summary="Deploy a scheduled configuration (CHIME)")
def deploy_schedule(pipelines: Verbs, request: Request,
                    config: Annotated[dict[str, Any], Body()]) -> Response:  # fmt: skip
    if not isinstance(config.get("schedule"), dict):
        raise InvalidWork("schedule: a scheduled configuration has a schedule", field="schedule")
    return json_reply([pipelines.deploy(config, by=who(request))["id"]])


@router.get("/schedule", **needs("viewer"), summary="Schedules (CHIME)")
def schedules(pipelines: Verbs, query: JsonText = "{}", projection: JsonText = "{}") -> Response:
    asked, shown = _query(query), _json(projection, "projection")
    return json_reply([_projected(_schedule_view(doc), shown)
                       for doc in pipelines.schedules.list(limit=1000)
                       if _matches(doc, asked)])  # fmt: skip


@router.get("/schedule/count", **needs("viewer"), summary="Schedules per name (CHIME)")
def count_schedules(pipelines: Verbs, query: JsonText = "{}") -> Response:
    asked = _query(query)
    counted: dict[str, int] = {}
    for doc in pipelines.schedules.list(limit=10_000):
        if _matches(doc, asked):
            counted[doc["name"]] = counted.get(doc["name"], 0) + 1
    return json_reply(counted)


@router.delete("/schedule", **needs("operator"), summary="Remove a schedule (CHIME)")
def remove_schedule(pipelines: Verbs, query: JsonText = "{}") -> Response:
    asked = _query(query)
    found = [doc["id"] for doc in pipelines.schedules.list(limit=10_000) if _matches(doc, asked)]
    for id in found:
        pipelines.schedules.remove(id)
    return Response(status_code=204)
