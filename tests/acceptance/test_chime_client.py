"""The unmodified CHIME/FRB client (``workflow-core==1.12.3``) against a real server.

The client runs in its own venv (see ``tests/chime.py``); what it did is then checked
through our HTTP API, the way CHIME's own buckets and results clients query it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from chime import DUMMY_TOKEN, chime_home, chime_python, run_chime, run_chime_cli

pytestmark = pytest.mark.slow

SUMMARY = "CHIME-SUMMARY "

LIFECYCLE = """
import json, time
from workflow.definitions.work import Work

PIPELINE = "chime-compat"
deposits = [
    Work(pipeline=PIPELINE, site="local", user="tester", parameters={"n": n}).deposit(
        return_ids=True
    )
    for n in range(3)
]
first = Work.withdraw(pipeline=PIPELINE, site="local")
withdrawn = first.model_dump(include={"id", "status", "attempt", "start", "parameters"})
first.status = "success"
first.results = {"answer": 42}
first.stop = time.time()
updated = first.update()
second = Work.withdraw(pipeline=PIPELINE, site="local")
deleted = second.delete()
nothing = Work.withdraw(pipeline="chime-compat-empty", site="local")
print("CHIME-SUMMARY " + json.dumps({
    "deposits": deposits, "withdrawn": withdrawn, "updated": updated,
    "second": second.id, "deleted": deleted, "nothing": nothing is None,
}))
"""

DEPOSIT = """
import json
from workflow.definitions.work import Work

deposits = [
    Work(
        pipeline="chime-run", site="local", user="tester",
        function="chime_task.double", parameters={"x": x},
    ).deposit(return_ids=True)
    for x in (3, 5)
]
print("CHIME-SUMMARY " + json.dumps(deposits))
"""

TASK = '''
def double(x):
    """Run by the CHIME runner inside its venv."""
    return {"doubled": 2 * x}
'''


def summary(stdout: str) -> Any:
    """The JSON a CHIME script printed after the ``CHIME-SUMMARY`` marker."""
    lines = [line for line in stdout.splitlines() if line.startswith(SUMMARY)]
    assert len(lines) == 1, stdout
    return json.loads(lines[0].removeprefix(SUMMARY))


def single_ids(deposits: list[Any]) -> list[str]:
    """Ids from ``deposit(return_ids=True)`` calls, each expected to return ``[id]``."""
    for returned in deposits:
        assert isinstance(returned, list) and len(returned) == 1, deposits
        assert isinstance(returned[0], str) and returned[0], deposits
    ids = [returned[0] for returned in deposits]
    assert len(set(ids)) == len(ids), ids
    return ids


def view(url: str, query: dict[str, Any], projection: dict[str, Any]) -> list[dict[str, Any]]:
    """``POST {url}/view`` as CHIME's buckets and results clients send it."""
    body = {"query": query, "projection": projection, "skip": 0, "limit": 10}
    response = httpx.post(f"{url}/view", json=body, timeout=10)
    assert response.status_code == 200, response.text
    docs = response.json()
    assert isinstance(docs, list), docs
    return docs


def in_results(url: str, pipeline: str, work_id: str, context: str = "") -> dict[str, Any]:
    """The one results document of ``work_id``, queried like ``Results.view``."""
    docs = view(f"{url}/results", {"pipeline": pipeline, "id": work_id}, {})
    assert len(docs) == 1, f"{docs}\n{context}"
    return docs[0]


def in_buckets(url: str, work_id: str) -> list[dict[str, Any]]:
    """The buckets documents with ``work_id``, queried like ``Buckets.view``."""
    return view(f"{url}/buckets", {"id": work_id}, {"_id": False})


def test_chime_client_deposits_withdraws_updates_deletes(server: Any, tmp_path: Path) -> None:
    python = chime_python()
    env = chime_home(tmp_path, server.url)

    out = summary(run_chime(python, LIFECYCLE, env).stdout)

    first, second, third = single_ids(out["deposits"])
    withdrawn = out["withdrawn"]
    # Same priority, so the oldest work is claimed first.
    assert withdrawn["id"] == first
    assert withdrawn["status"] == "running"
    assert withdrawn["attempt"] == 1
    assert withdrawn["start"] is not None
    assert withdrawn["parameters"] == {"n": 0}
    assert out["updated"] is True
    assert out["second"] == second
    assert out["deleted"] is True
    assert out["nothing"] is True

    done = in_results(server.url, "chime-compat", first)
    assert done["status"] == "success"
    assert done["results"] == {"answer": 42}
    assert done["attempt"] == 1
    assert done["parameters"] == {"n": 0}

    assert in_buckets(server.url, second) == []

    (queued,) = in_buckets(server.url, third)
    assert queued["status"] == "queued"
    assert queued["attempt"] == 0
    assert queued["parameters"] == {"n": 2}
    assert queued["pipeline"] == "chime-compat"
    assert (queued["site"], queued["user"]) == ("local", "tester")


def _deposited(url: str, tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    """CHIME's Python, an environment whose tasks module holds ``TASK``, and the ids of
    the two works CHIME's client deposited (``DEPOSIT``)."""
    python = chime_python()
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "chime_task.py").write_text(TASK)
    env = {**chime_home(tmp_path, url), "PYTHONPATH": str(tasks)}
    return python, env, single_ids(summary(run_chime(python, DEPOSIT, env).stdout))


def test_chime_runner_completes_work(server: Any, tmp_path: Path) -> None:
    python, env, ids = _deposited(server.url, tmp_path)

    # Three polls for two works: the last one finds nothing and must not break the loop.
    runner = run_chime_cli(
        python,
        ["run", "chime-run", "-s", "local", "-f", "chime_task.double", "-l", "3", "--sleep", "1"],
        env,
        timeout=120,
    )

    for work_id, expected in zip(ids, (6, 10), strict=True):
        done = in_results(server.url, "chime-run", work_id, runner.stdout)
        assert done["status"] == "success", runner.stdout
        assert done["results"] == {"doubled": expected}, runner.stdout
        assert done["attempt"] == 1
        assert done["stop"] is not None


def test_chime_runner_with_a_runner_token_reports_under_its_name(
        make_server: Any, tmp_path: Path) -> None:  # fmt: skip
    """Leases bound to the claiming token keep CHIME's own runner working: it claims and
    reports with one token, and the history names that token."""
    admin = {"x-access-token": "chime-compat-admin-token"}
    server = make_server(env={"WORKFLOW_RUNNER_TOKENS": f"chime={DUMMY_TOKEN}",
                              "WORKFLOW_ADMIN_TOKENS": f"ada={admin['x-access-token']}"})
    python, env, ids = _deposited(server.url, tmp_path)
    runner = run_chime_cli(
        python, ["run", "chime-run", "-s", "local", "-f", "chime_task.double", "-l", "3",
                 "--sleep", "1"], env, timeout=120)  # fmt: skip
    for work_id, expected in zip(ids, (6, 10), strict=True):
        reply = httpx.get(f"{server.url}/results/works/{work_id}", headers=admin, timeout=10)
        assert reply.status_code == 200, f"{reply.text}\n{runner.stdout}"
        done = reply.json()
        assert (done["status"], done["results"]) == ("success", {"doubled": expected})
        assert done["history"][-1]["by"] == "chime", done["history"]
