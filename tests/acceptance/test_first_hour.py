"""Issue 18, the first hour: what a new user and an operator trip over, each tried as they
would, with the ``workflow`` command in a subprocess (against a real server where one
is involved)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, free_port

from workflow.tokens import digest, read_file

pytestmark = pytest.mark.slow

TOKEN = "first-hour-operator-token-000001"


def workflow(*args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``workflow ARGS`` with stdout and stderr piped (no terminal), COLUMNS unset."""
    environ = {**os.environ, "NO_COLOR": "1", **(env or {})}
    environ.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "workflow", *args], env=environ,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    done = workflow(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line a failed command printed."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def deposit(server: Server, *args: str) -> list[str]:
    ids = json.loads(ok("deposit", "--json", "--url", server.url, *args))
    assert isinstance(ids, list)
    return ids


def get(server: Server, id: str) -> dict[str, Any]:
    reply = httpx.get(f"{server.url}/buckets/work/{id}", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


# -- 1: token new --file into a folder that does not exist ------------------------------


def test_token_new_makes_the_missing_folder_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "workflow" / "tokens.toml"
    done = workflow("token", "new", "alice", "--role", "operator", "--file", str(path))
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
    (known,) = read_file(path)
    assert (known.name, known.role, known.sha256) == ("alice", "operator", digest(token))


def test_token_file_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    path = tmp_path / "plain-file" / "workflow" / "tokens.toml"
    line = one_error_line(workflow("token", "new", "alice", "--role", "operator",
                                   "--file", str(path)))  # fmt: skip
    assert "plain-file" in line and "Not a directory" in line and "--file" in line


def test_graph_convert_makes_the_missing_folder_or_says_why_in_one_line(tmp_path: Path
                                                                        ) -> None:  # fmt: skip
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"graph": {"id": "g"}, "links": [], "nodes": [
        {"id": "a", "task_type": "method", "task_identifier": "json.dumps"}]}))
    made = tmp_path / "new" / "folder" / "g.yaml"
    ok("graph", "convert", str(graph), str(made))
    assert "task_identifier: json.dumps" in made.read_text()
    (tmp_path / "plain-file").write_text("")
    line = one_error_line(workflow("graph", "convert", str(graph),
                                   str(tmp_path / "plain-file" / "g.yaml")))  # fmt: skip
    assert "plain-file" in line


# -- 2: a runner whose FUNCTION does not import claims nothing --------------------------


@pytest.mark.parametrize(("how", "said"), [
    (["nosuchmod.process"], "ModuleNotFoundError: No module named 'nosuchmod'"),
    (["-f", "json.no_such_function"], "has no attribute 'no_such_function'"),
    (["os:sep"], "os:sep is str, not a function"),
])  # fmt: skip
def test_a_function_that_does_not_import_claims_nothing(server: Server, how: list[str],
                                                        said: str) -> None:  # fmt: skip
    ids = deposit(server, "-p", "first", "--count", "2")
    done = workflow("run", "first", *how, "--burst", "--url", server.url)
    assert done.returncode == 2
    assert said in one_error_line(done)
    assert [(get(server, id)["status"], get(server, id)["attempt"]) for id in ids] == [
        ("queued", 0), ("queued", 0)]


# -- 4: PIPELINE together with -p --------------------------------------------------------


def test_run_takes_a_pipeline_argument_and_p_together(server: Server) -> None:
    params = ["--function", "workflow.demo.dedisperse", "--param", "event=1",
              "--param", "dm=300", "--param", "width_ms=1"]  # fmt: skip
    ids = deposit(server, "-p", "saxs-integrate", *params) + \
        deposit(server, "-p", "saxs-graph", *params)  # fmt: skip
    done = workflow("run", "saxs-integrate", "-p", "saxs-graph", "--burst", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert [get(server, id)["status"] for id in ids] == ["success", "success"]


# -- 5: --url and --token before or after the subcommand ---------------------------------


@pytest.fixture
def guarded(make_server: Callable[..., Server]) -> Server:
    """A server that only answers callers with ``TOKEN``."""
    return make_server(env={"WORKFLOW_OPERATOR_TOKENS": f"otto={TOKEN}"})


@pytest.mark.parametrize("args", [
    ["results", "search", "--json"], ["results", "counts", "--json"],
    ["buckets", "view", "first", "--json"], ["buckets", "ls", "--json"],
])  # fmt: skip
def test_url_and_token_come_before_or_after_the_subcommand(guarded: Server,
                                                           args: list[str]) -> None:  # fmt: skip
    group, rest = args[0], args[1:]
    address = ["--url", guarded.url, "--token", TOKEN]
    after = ok(group, *rest, *address)
    assert ok(group, *address, *rest) == after
    # typed after the subcommand wins over the group's and the environment's
    away = f"http://127.0.0.1:{free_port()}"
    env = {"WORKFLOW_URL": away, "WORKFLOW_TOKEN": "not-the-token-at-all-000000"}
    assert ok(group, "--url", away, *rest, *address, env=env) == after
    assert "token" in one_error_line(workflow(group, *rest, "--url", guarded.url))


# -- 7 and 8: the demo keeps to its own store and stops its children on SIGTERM ----------


def test_the_demo_has_a_fresh_store_of_its_own(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    for _ in range(2):
        out = ok("demo", "--port", str(free_port()), "--count", "3", "--exit", env=env)
        assert "latest 3 of 3 results" in out
    own = tmp_path / "workflow" / "demo.db"
    assert f"store sqlite:///{own}" in out
    assert own.exists() and not (tmp_path / "workflow" / "workflow.db").exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and _stat(int(entry.name))[1] == pid:
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def _stat(pid: int) -> tuple[str, int]:
    """A process's state letter and parent id."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_sigterm_stops_the_demo_with_its_server_and_runner(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "NO_COLOR": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "workflow", "demo", "--port", str(port),
                             "--count", "200"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.startswith("starting workflow run"):
                break
        deadline = time.monotonic() + 10
        while len(_children(demo.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = _children(demo.pid)
        assert len(started) == 2  # the server and the runner
        started += [kid for pid in started for kid in _children(pid)]
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
    deadline = time.monotonic() + 10
    while any(map(_alive, started)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if _alive(pid)] == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/version", timeout=2)


# -- 9: against a server that is down, a terminal hears at once that it waits -----------


def _on_a_terminal(args: list[str], until: str, seconds: float) -> tuple[str, float | None]:
    """Run ``workflow ARGS`` with stdout and stderr on a pseudo-terminal, until it prints
    ``until``, ends, or ``seconds`` pass; what it printed, and after how many seconds
    ``until`` showed (None: it did not)."""
    main, other = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "workflow", *args], stdin=subprocess.DEVNULL,
                               stdout=other, stderr=other)  # fmt: skip
    os.close(other)
    said, seen = b"", None
    try:
        while time.monotonic() - started < seconds:
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the terminal's other end closed: the process ended
                    break
                if not chunk:
                    break
                said += chunk
                if until.encode() in said and said.endswith(b"\n"):  # whole lines
                    seen = time.monotonic() - started
                    break
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        os.close(main)
    return said.decode(errors="replace").replace("\r\n", "\n"), seen


@pytest.mark.parametrize("command", ["run", "watch"])
def test_a_runner_or_watcher_says_at_once_that_it_waits_for_the_server(
        command: str, tmp_path: Path) -> None:  # fmt: skip
    url = f"http://127.0.0.1:{free_port()}"
    args = ["run", "first"] if command == "run" else ["watch", str(tmp_path), "-p", "first"]
    said, seen = _on_a_terminal([*args, "--url", url], "waiting for the server", 8)
    assert seen is not None and seen < 8, said
    assert f"waiting for the server at {url}" in said and "retrying for up to 30 s" in said


def test_deposit_says_at_once_that_it_waits_then_one_error_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    said, seen = _on_a_terminal(["deposit", "-p", "first", "--url", url], "error: ", 30)
    lines = said.splitlines()
    assert seen is not None, said
    assert lines[0].startswith(f"waiting for the server at {url}"), said
    assert lines[-1].startswith("error: ") and url in lines[-1] and len(lines) == 2, said


# -- 10: piped tables are whole -------------------------------------------------------------


def test_piped_tables_are_not_cut_to_80_columns(server: Server) -> None:
    long = "x" * 40
    queued = deposit(server, "-p", "first", "--param", f"name={long}", "--count", "2")
    cancelled = deposit(server, "-p", "first", "--tag", "gone")
    ok("buckets", "cancel", *cancelled, "--url", server.url)
    table = ok("buckets", "view", "first", "--url", server.url)
    for word in ("priority", "attempt", "runner@host", "parameters", *queued):
        assert word in table, table
    assert max(map(len, table.splitlines())) > 80
    found = ok("results", "search", "--url", server.url)
    for word in ("pipeline", "status", "attempt", "finished", "results", *cancelled):
        assert word in found, found
