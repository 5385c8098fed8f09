"""What a new user's first works trip over, over HTTP to a real server and in Python:
a function that is no dotted path, misspelt field names, and the payload of older CHIME
clients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server

from workflow.buckets import Buckets
from workflow.errors import InvalidWork
from workflow.store.sqlite import SqliteStore
from workflow.work import Work

#: A work as CHIME/FRB's documentation prints it, in the older client's fields.
OLDER = {"pipeline": "older", "parameters": {"event": 9386707}, "path": "/data/chime/9386707",
         "group": "frb-pipelines", "precursors": [{"id": "5f4e3d"}], "archive": True,
         "user": None, "tags": None, "event": None, "attempt": 1, "status": "created",
         "id": None, "creation": None, "start": None, "stop": None, "results": None,
         "products": None, "plots": None, "site": "chime", "function": "mod.f",
         "command": None, "timeout": 3600, "retries": 2, "priority": 3}  # fmt: skip


def _deposit(server: Server, *works: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/buckets/work", params={"return_ids": "true"},
                      json=list(works), timeout=10)  # fmt: skip


def test_a_function_that_is_no_dotted_path_is_refused_at_deposit(server: Server,
                                                                 tmp_path: Path) -> None:
    reply = _deposit(server, {"pipeline": "p", "function": "notdotted"})
    assert reply.status_code == 422
    assert reply.json()["field"] == "works[0].function"
    assert "'notdotted' is not a dotted path" in reply.json()["message"]
    for good in ("pkg.module.func", "pkg.module:func", "builtins.dict"):
        assert _deposit(server, {"pipeline": "p", "function": good}).status_code == 200
    with pytest.raises(InvalidWork, match="not a dotted path"):
        Buckets(SqliteStore(f"sqlite:///{tmp_path / 'in-process.db'}")).deposit(
            [Work(pipeline="p", function="a b.c")])
    cli = subprocess.run([sys.executable, "-m", "workflow", "deposit", "-p", "p", "--function",
                          "notdotted"], env={**os.environ, "WORKFLOW_URL": server.url},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode != 0 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert "not a dotted path" in cli.stderr


def test_every_misspelt_field_is_named_with_the_closest_known_one(server: Server) -> None:
    reply = _deposit(server, {"pipeline": "p", "paramters": {}, "prioirty": 3,
                              "config": {"archve": {}}, "zzzz": 1})  # fmt: skip
    assert reply.status_code == 422
    message = reply.json()["message"]
    assert "works[0].paramters: unknown field; did you mean `parameters`?" in message
    assert "works[0].prioirty: unknown field; did you mean `priority`?" in message
    assert "works[0].config.archve: unknown field; did you mean `archive`?" in message
    assert "works[0].zzzz: unknown field" in message and "zzzz: unknown field;" not in message
    assert len(reply.json()["detail"]) == 4
    # A request body too, on a runner's hot route and on a route FastAPI answers.
    withdraw = httpx.post(f"{server.url}/buckets/withdraw", json={"pipelnes": ["p"]}, timeout=10)
    assert withdraw.status_code == 422
    assert withdraw.json()["message"] == "pipelnes: unknown field; did you mean `pipelines`?"
    change = httpx.patch(f"{server.url}/buckets/work/nope", json={"priorty": 2}, timeout=10)
    assert change.status_code == 422 and "did you mean `priority`?" in change.json()["message"]
    # The closest field of that route's own body, not of any request's ("pipeline" is a
    # work's field; a runner announces its "pipelines").
    hello = httpx.post(f"{server.url}/buckets/runners", json={"id": "r", "pipline": ["p"]},
                       timeout=10)  # fmt: skip
    assert hello.json()["message"] == "pipline: unknown field; did you mean `pipelines`?"


def test_the_older_chime_payload_is_accepted_and_what_has_no_counterpart_is_kept(
        server: Server) -> None:  # fmt: skip
    reply = _deposit(server, OLDER, {**OLDER, "pipeline": "older", "archive": False})
    assert reply.status_code == 200, reply.text
    first, second = (httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).json()
                     for id in reply.json())  # fmt: skip
    assert first["status"] == "queued" and first["attempt"] == 0
    assert first["user"] and first["user"] != "None"  # null: the depositing caller
    assert first["legacy"] == {"path": "/data/chime/9386707", "group": "frb-pipelines",
                               "precursors": [{"id": "5f4e3d"}]}  # fmt: skip
    assert first["config"]["archive"]["results"] is True
    assert second["config"]["archive"] == {"results": False, "products": "bypass",
                                           "plots": "bypass", "logs": "move"}  # fmt: skip
    work = Work(**OLDER)  # and in Python
    assert work.legacy is not None and work.legacy["group"] == "frb-pipelines"
