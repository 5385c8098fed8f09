"""The ``workflow`` command against a real server, run as a user runs it: a subprocess."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, free_port

pytestmark = pytest.mark.slow

TRACEBACK = 'Traceback (most recent call last):\n  File "fold.py", line 9\nValueError: boom'


def workflow(url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``workflow ARGS`` with ``WORKFLOW_URL=url``; tables wide enough not to wrap."""
    env = {**os.environ, "WORKFLOW_URL": url, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "workflow", *args], input=input, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def ok(server: Server, *args: str, input: str | None = None) -> str:
    """Standard output of a ``workflow`` command that must succeed."""
    done = workflow(server.url, *args, input=input)
    assert done.returncode == 0, done.stderr
    return done.stdout


def deposit(server: Server, *args: str) -> list[str]:
    """Deposit with ``workflow deposit --json ARGS``; the new ids."""
    ids = json.loads(ok(server, "deposit", "--json", *args))
    assert isinstance(ids, list) and all(isinstance(i, str) for i in ids), ids
    return ids


def get(server: Server, id: str) -> dict[str, Any]:
    """A work as the server has it, queued, running or finished."""
    reply = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def withdraw(server: Server, pipeline: str, limit: int = 10) -> list[dict[str, Any]]:
    """Claim up to ``limit`` works of ``pipeline`` as runner r1 on node1."""
    body = {"pipelines": [pipeline], "limit": limit, "runner": "r1", "host": "node1"}
    reply = httpx.post(f"{server.url}/buckets/withdraw", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def complete(server: Server, id: str, **outcome: Any) -> dict[str, Any]:
    """Report attempt 1 of ``id``."""
    reply = httpx.post(f"{server.url}/buckets/work/{id}/complete",
                       json={"attempt": 1, **outcome}, timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{table}")


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line a failed command printed."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


# -- deposit ----------------------------------------------------------------------------


def test_deposit_from_a_yaml_file_prints_one_id_per_line(server: Server, tmp_path: Path) -> None:
    works = tmp_path / "works.yaml"
    works.write_text(
        "- pipeline: fold\n  function: pkg.fold.run\n  parameters: {dm: 300}\n  tags: [a]\n"
        "- pipeline: fold\n  command: [fold, --dm, '400']\n  priority: 5\n"
    )
    ids = ok(server, "deposit", str(works)).split()
    assert len(ids) == 2 and len(set(ids)) == 2
    first, second = get(server, ids[0]), get(server, ids[1])
    assert (first["function"], first["parameters"], first["tags"]) == (
        "pkg.fold.run", {"dm": 300}, ["a"])  # fmt: skip
    assert (second["command"], second["priority"], second["status"]) == (
        ["fold", "--dm", "400"], 5, "queued")  # fmt: skip


def test_deposit_from_options_with_params_and_count(server: Server) -> None:
    ids = deposit(server, "-p", "fold", "--function", "pkg.fold.run", "--param", "dm=300",
                  "--param", "name=B0531+21", "--param", 'cfg={"fast": true}',
                  "--count", "3", "--tag", "night", "--event", "9386707",
                  "--priority", "4", "--retries", "0")  # fmt: skip
    assert len(set(ids)) == 3
    for id in ids:
        work = get(server, id)
        assert work["parameters"] == {"dm": 300, "name": "B0531+21", "cfg": {"fast": True}}
        assert (work["tags"], work["event"], work["priority"], work["retries"]) == (
            ["night"], [9386707], 4, 0)  # fmt: skip


def test_command_line_options_override_the_file(server: Server, tmp_path: Path) -> None:
    works = tmp_path / "works.json"
    works.write_text(json.dumps({"pipeline": "fold", "command": ["old"], "priority": 1,
                                 "parameters": {"dm": 1, "keep": True}}))  # fmt: skip
    (id,) = deposit(server, str(works), "--command", "fold --name 'Crab pulsar'",
                    "--priority", "5", "--param", "dm=2")  # fmt: skip
    work = get(server, id)
    assert work["command"] == ["fold", "--name", "Crab pulsar"]
    assert (work["priority"], work["parameters"]) == (5, {"dm": 2, "keep": True})


def test_deposit_reads_standard_input(server: Server) -> None:
    ids = ok(server, "deposit", "-", input='[{"pipeline": "stdin"}, {"pipeline": "stdin"}]')
    assert [get(server, id)["pipeline"] for id in ids.split()] == ["stdin", "stdin"]


# -- buckets ----------------------------------------------------------------------------


def test_buckets_ls_shows_counts_per_pipeline(server: Server) -> None:
    deposit(server, "-p", "fold", "--count", "3")
    (running,) = deposit(server, "-p", "search")
    deposit(server, "-p", "search")
    assert [w["id"] for w in withdraw(server, "search", limit=1)] == [running]
    table = ok(server, "buckets", "ls")
    assert row(table, "fold")[1:6] == ["3", "0", "0", "0", "0"]
    assert row(table, "search")[1:3] == ["1", "1"]
    assert ok(server, "buckets", "status") == table
    listed = {p["name"]: p["counts"] for p in json.loads(ok(server, "buckets", "ls", "--json"))}
    assert listed == {"fold": {"queued": 3}, "search": {"queued": 1, "running": 1}}


def test_buckets_view_lists_the_works_of_a_bucket(server: Server) -> None:
    ids = deposit(server, "-p", "fold", "--param", "dm=300", "--count", "2")
    deposit(server, "-p", "other")
    table = ok(server, "buckets", "view", "fold", "--status", "queued")
    assert "fold: 2 of 2 queued works" in table
    for id in ids:
        assert row(table, id)[1:4] == ["queued", "3", "0/3"]
        assert row(table, id)[-1] == '{"dm":300}'
    withdraw(server, "fold")
    running = ok(server, "buckets", "view", "fold", "--status", "running")
    assert "r1@node1" in row(running, ids[0])
    docs = json.loads(ok(server, "buckets", "view", "fold", "--json"))
    assert sorted(d["id"] for d in docs) == sorted(ids)


def test_priority_and_retries_change_a_queued_work(server: Server) -> None:
    (id,) = deposit(server, "-p", "fold", "--priority", "2")
    assert ok(server, "buckets", "priority", id, "5").strip() == f"{id} priority 5"
    assert ok(server, "buckets", "retries", id, "0").strip() == f"{id} retries 0"
    work = get(server, id)
    assert (work["priority"], work["retries"]) == (5, 0)
    assert [e["action"] for e in work["history"]] == ["change", "change"]


def test_pause_stops_withdrawals_until_resume(server: Server) -> None:
    (id,) = deposit(server, "-p", "fold")
    assert ok(server, "buckets", "pause", "fold").strip() == "fold paused"
    assert withdraw(server, "fold") == []
    assert row(ok(server, "buckets", "ls"), "fold")[6] == "paused"
    assert ok(server, "buckets", "resume", "fold").strip() == "fold resumed"
    assert [w["id"] for w in withdraw(server, "fold")] == [id]


def test_defaults_are_shown_and_set(server: Server) -> None:
    shown = ok(server, "buckets", "defaults", "fold")
    assert "(server default)" in shown and "paused    no" in shown
    ok(server, "buckets", "defaults", "fold", "--priority", "4", "--backoff", "2")
    settings = json.loads(ok(server, "buckets", "defaults", "fold", "--json"))
    assert settings["defaults"] == {"priority": 4, "retries": None, "timeout": None,
                                    "backoff": 2.0, "notify": None}  # fmt: skip
    (id,) = deposit(server, "-p", "fold")
    assert get(server, id)["priority"] == 4
    ok(server, "buckets", "pause", "fold")
    lines = ok(server, "buckets", "defaults", "fold").splitlines()
    changed = lines.index(next(line for line in lines if line.startswith("changed")))
    assert lines[changed].split()[1:4] == ["pause", "by", getpass.getuser() + ","]
    assert '"priority":4' in lines[changed + 1] and '"backoff":2.0' in lines[changed + 1]


def test_cancel_moves_work_to_the_results(server: Server) -> None:
    (id,) = deposit(server, "-p", "fold")
    assert ok(server, "buckets", "cancel", id).strip() == f"{id} cancelled"
    assert get(server, id)["status"] == "cancelled"
    page = json.loads(ok(server, "results", "search", "--status", "cancelled", "--json"))
    assert [w["id"] for w in page["items"]] == [id]


def test_cancel_of_a_whole_pipeline_confirms_the_count(server: Server) -> None:
    ids = deposit(server, "-p", "sweep", "--count", "3")
    asked = workflow(server.url, "buckets", "cancel", "--pipeline", "sweep", input="n\n")
    assert asked.returncode != 0 and "Cancel 3 work(s)?" in asked.stderr
    assert {get(server, id)["status"] for id in ids} == {"queued"}
    out = ok(server, "buckets", "cancel", "--pipeline", "sweep", input="y\n")
    assert out.strip().endswith("cancel: 3 of 3 done, 0 skipped")
    assert {get(server, id)["status"] for id in ids} == {"cancelled"}
    again = ok(server, "results", "retry", "--pipeline", "sweep", "--status", "cancelled", "-y")
    assert again.strip() == "retry: 3 of 3 done, 0 skipped"
    assert ok(server, "buckets", "cancel", "--pipeline", "nothing-here").strip() == \
        "no works to cancel"
    both = workflow(server.url, "buckets", "cancel", ids[0], "--pipeline", "sweep")
    assert both.returncode == 2 and "either IDS or --pipeline" in both.stderr


def test_rm_deletes_with_yes_and_asks_without(server: Server) -> None:
    keep, gone, also_gone = deposit(server, "-p", "fold", "--count", "3")
    asked = workflow(server.url, "buckets", "rm", keep, input="n\n")
    assert asked.returncode != 0 and "Delete 1 work(s)" in asked.stderr
    assert get(server, keep)["status"] == "queued"
    out = ok(server, "buckets", "rm", gone, also_gone, "no-such-work", "--yes")
    assert out.strip() == "deleted 2 of 3 works"
    for id in (gone, also_gone):
        assert httpx.get(f"{server.url}/buckets/work/{id}", timeout=10).status_code == 404
    assert get(server, keep)["status"] == "queued"


# -- results ----------------------------------------------------------------------------


def test_results_search_filters_and_prints_json(server: Server) -> None:
    night = deposit(server, "-p", "fold", "--tag", "night", "--count", "2")
    day = deposit(server, "-p", "fold", "--tag", "day")
    other = deposit(server, "-p", "other", "--tag", "night")
    for work in withdraw(server, "fold"):
        complete(server, work["id"], status="success", results={"snr": 12.5})
    ok(server, "buckets", "cancel", *other)

    page = json.loads(ok(server, "results", "search", "--pipeline", "fold", "--status",
                         "success", "--tag", "night", "--since", "1h", "--json"))  # fmt: skip
    assert page["total"] == 2
    assert sorted(w["id"] for w in page["items"]) == sorted(night)
    assert all(w["results"] == {"snr": 12.5} for w in page["items"])
    everything = json.loads(ok(server, "results", "search", "--json", "--sort", "id",
                               "--order", "asc", "--limit", "2"))  # fmt: skip
    assert everything["total"] == 4
    assert [w["id"] for w in everything["items"]] == sorted([*night, *day, *other])[:2]
    early = json.loads(ok(server, "results", "search", "--until", "1h", "--json"))
    assert (early["total"], early["items"]) == (0, [])

    table = ok(server, "results", "search", "--tag", "night")
    assert "3 of 3 results" in table
    assert row(table, other[0])[1:3] == ["other", "cancelled"]
    assert row(table, night[0])[-1] == '{"snr":12.5}'


def test_results_show_prints_the_history_of_a_failed_work(server: Server) -> None:
    (id,) = deposit(server, "-p", "fold", "--function", "pkg.fold.run",
                    "--param", "dm=300", "--retries", "0")  # fmt: skip
    assert [w["id"] for w in withdraw(server, "fold")] == [id]
    error = {"type": "ValueError", "message": "boom", "traceback": TRACEBACK}
    assert complete(server, id, status="failure", error=error)["status"] == "failure"

    shown = ok(server, "results", "show", id)
    assert f"work {id}" in shown and "pkg.fold.run" in shown and '"dm": 300' in shown
    attempt = row(shown, "1")
    assert attempt[1:4] == ["failure", "", "r1@node1"]
    assert attempt[-1] == "ValueError: boom"
    assert "attempt 1 traceback" in shown and 'File "fold.py", line 9' in shown
    as_json = json.loads(ok(server, "results", "show", id, "--json"))
    assert as_json["history"][0]["error"]["message"] == "boom"


def test_results_counts_per_pipeline_and_status(server: Server) -> None:
    deposit(server, "-p", "fold", "--count", "2")
    (cancelled,) = deposit(server, "-p", "other")
    ok(server, "buckets", "cancel", cancelled)
    table = ok(server, "results", "counts")
    assert row(table, "fold")[1:] == ["2", "0", "0", "0", "0", "2"]
    assert row(table, "other")[1:] == ["0", "0", "0", "0", "1", "1"]
    assert row(table, "all")[1:] == ["2", "0", "0", "0", "1", "3"]
    counts = json.loads(ok(server, "results", "counts", "--json"))
    assert counts == {"fold": {"queued": 2}, "other": {"cancelled": 1}}


# -- errors -----------------------------------------------------------------------------


def test_an_invalid_work_is_one_line_naming_the_field(server: Server) -> None:
    done = workflow(server.url, "deposit", "-p", "fold", "--priority", "9")
    line = one_error_line(done)
    assert "priority" in line and done.stdout == ""
    assert json.loads(ok(server, "buckets", "ls", "--json")) == []


def test_a_server_error_is_one_line(server: Server) -> None:
    line = one_error_line(workflow(server.url, "results", "show", "no-such-work"))
    assert "no-such-work" in line
    line = one_error_line(workflow(server.url, "buckets", "priority", "no-such-work", "3"))
    assert "no-such-work" in line


@pytest.mark.parametrize("args", [["buckets", "ls"], ["results", "search"],
                                  ["deposit", "-p", "fold"]])  # fmt: skip
def test_no_server_is_one_line(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(workflow(url, *args))
    assert url in line


@pytest.mark.parametrize(("content", "reason"), [
    ("just a string\n", "not str"),
    ("- 1\n- 2\n", "not a list of int"),
    ("[]\n", "holds no work"),
    ("pipeline: [fold\n", "neither JSON nor YAML"),
    ("- pipeline: fold\n- pipeline: fold\n  priority: 9\n", "works[1].priority"),
])  # fmt: skip
def test_a_bad_file_is_one_line(server: Server, tmp_path: Path, content: str,
                                reason: str) -> None:  # fmt: skip
    works = tmp_path / "works.yaml"
    works.write_text(content)
    assert reason in one_error_line(workflow(server.url, "deposit", str(works)))
    assert json.loads(ok(server, "buckets", "ls", "--json")) == []


def test_a_missing_file_is_one_line(server: Server, tmp_path: Path) -> None:
    line = one_error_line(workflow(server.url, "deposit", str(tmp_path / "missing.yaml")))
    assert "missing.yaml" in line and "No such file" in line
