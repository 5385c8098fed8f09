"""The deployment files, checked for structure since no container engine runs here:
docker-compose.yml (MongoDB as a replica set with a health check and a volume, the
server on it with a token, two runners of the demo pipeline) and the Dockerfile."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow.cli import cli
from workflow.store.mongo import MongoStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _env(service: dict[str, Any], tokens: str = "s3cret") -> dict[str, str]:
    """The service's environment with ``${VAR:?...}``/``${VAR:-default}`` resolved."""
    values = {"WORKFLOW_TOKENS": tokens, "WORKFLOW_RUNNER_TOKEN": "runner-s3cret"}

    def resolve(text: str) -> str:
        return re.sub(r"\$\{(\w+)(?::[?-]([^}]*))?\}",
                      lambda m: values.get(m[1], "" if m[0].find(":-") > 0 else m[0]), text)

    return {k: resolve(str(v)) for k, v in (service.get("environment") or {}).items()}


def test_services_and_volumes(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"mongo", "server", "runner", "demo-work"}
    assert set(compose["volumes"]) == {"mongo-data", "archive", "spool"}


def test_mongo_is_a_single_node_replica_set_with_a_health_check_and_a_volume(
    compose: dict[str, Any]
) -> None:
    mongo = compose["services"]["mongo"]
    assert mongo["image"].startswith("mongo:")
    assert mongo["command"][:2] == ["--replSet", "rs0"] and "--bind_ip_all" in mongo["command"]
    assert "mongo-data:/data/db" in mongo["volumes"]
    check = mongo["healthcheck"]
    assert check["test"][:2] == ["CMD", "mongosh"]
    assert "rs.initiate" in check["test"][-1] and "host: 'mongo:27017'" in check["test"][-1]
    assert check["retries"] >= 10


def test_the_server_runs_on_mongo_with_a_token_and_serves_the_web_ui(compose: dict[str, Any]
                                                                     ) -> None:  # fmt: skip
    server = compose["services"]["server"]
    assert server["build"] == "."
    assert server["command"][0] in cli.commands and server["command"][0] == "serve"
    assert server["command"][server["command"].index("--host") + 1] == "0.0.0.0"
    env = _env(server)
    store = env["WORKFLOW_STORE"]
    assert store.startswith("mongodb://mongo:27017/") and "replicaSet=rs0" in store
    opened = MongoStore(store)  # connects lazily: nothing is contacted here
    try:
        assert opened.db.name == "workflow", "the URL names the database"
    finally:
        opened.close()
    assert env["WORKFLOW_TOKENS"] == "s3cret", "listening beyond loopback needs tokens"
    assert "${WORKFLOW_TOKENS:?" in server["environment"]["WORKFLOW_TOKENS"], \
        "compose refuses to start without a token"
    assert env["WORKFLOW_RUNNER_TOKENS"] == "runners=runner-s3cret"
    assert env["WORKFLOW_ARCHIVE"] == "/archive" and "archive:/archive" in server["volumes"]
    assert server["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "8004:8004" in server["ports"]
    assert "/version" in " ".join(server["healthcheck"]["test"])


def test_two_runners_of_the_demo_pipeline(compose: dict[str, Any]) -> None:
    runner = compose["services"]["runner"]
    assert runner["deploy"]["replicas"] == 2
    command = runner["command"]
    assert command[:2] == ["run", "demo-search"]
    demo = importlib.import_module("workflow.demo")
    assert command[1] == demo.PIPELINE
    assert callable(demo.dedisperse), "the demo works' function is in the image"
    env = _env(runner)
    assert env["WORKFLOW_URL"] == "http://server:8004"
    assert env["WORKFLOW_TOKEN"] == "runner-s3cret", "a runner's token, not the admin's"
    assert runner["depends_on"]["server"]["condition"] == "service_healthy"
    assert "archive:/archive" in runner["volumes"] and "--archive" in command
    assert runner["stop_grace_period"] == "40s", "longer than the runner's 30 s grace"
    seed = compose["services"]["demo-work"]
    assert "demo_works" in seed["entrypoint"][-1] and seed["restart"] == "no"


def test_every_workflow_variable_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    code = " ".join(p.read_text() for p in (REPO / "workflow").rglob("*.py"))
    for service in compose["services"].values():
        for name in service.get("environment") or {}:
            assert name in code, f"{name} is not read by workflow"


def test_the_dockerfile_installs_the_server_and_mongo_extras_and_runs_workflow() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM")][0]].startswith(
        "FROM python:3.11")
    install = next(line for line in lines if "pip install" in line)
    extras = install.split("[", 1)[1].split("]", 1)[0].split(",")
    assert {"server", "mongo"} <= set(extras), "the image serves, on MongoDB"
    assert 'ENTRYPOINT ["workflow"]' in lines
    assert "USER workflow" in lines, "not as root"
    for copied in ("workflow", "webui", "pyproject.toml"):
        assert any(line.startswith("COPY") and copied in shlex.split(line)
                   for line in lines), copied
