"""Drive the real CHIME/FRB client (``workflow-core==1.12.3``) from tests.

The CHIME wheel installs a top-level package named ``workflow``, the same name as ours, so
it lives in its own virtual environment (``<repo>/.venv-chime``) and is only ever run in
subprocesses. These helpers build that environment once, write a CHIME workspace that
points at one of our servers, and run Python snippets or the ``workflow`` CLI inside it.
"""

from __future__ import annotations

import fcntl
import functools
import os
import subprocess
import sys
import venv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

#: The client release whose wire protocol we are compatible with (see chime-api.md).
CHIME_REQUIREMENT = "workflow-core==1.12.3"
REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-chime"
#: Written inside the venv only after a verified install; its absence means "rebuild".
MARKER = VENV / ".installed-workflow-core-1.12.3"
#: Sent as ``x-access-token``; also keeps the client's "token missing" warning away.
DUMMY_TOKEN = "chime-compat-test-token"
#: Variables the CHIME client reads as a token (chime-api.md section 7).
TOKEN_VARIABLES = ("WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN", "GITHUB_TOKEN", "GITHUB_PAT")
#: Variables that would let our own ``workflow`` package or venv leak into the CHIME one.
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
#: Confirms, inside the venv, that ``workflow`` is CHIME's package at the right version.
_PROBE = (
    "import importlib.metadata as m, workflow.definitions.work as w; "
    "assert m.version('workflow.core') == '1.12.3', m.version('workflow.core'); "
    "print(w.__file__)"
)


class ChimeFailed(AssertionError):
    """A command run in the CHIME virtual environment failed or timed out."""


def _venv_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _install(env_dir: Path) -> None:
    """(Re)create the venv in place and install the CHIME client into it."""
    # ``clear=True`` empties the directory but keeps it, so the lock held on the
    # directory itself stays valid; the venv must be built at its final path because
    # pip writes absolute paths (script shebangs) into it.
    venv.EnvBuilder(clear=True, with_pip=True, symlinks=True).create(env_dir)
    python = _venv_python(env_dir)
    env = {k: v for k, v in os.environ.items() if k not in PYTHON_VARIABLES}
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-input", CHIME_REQUIREMENT],
        env=env, timeout=900, cwd=env_dir,
    )  # fmt: skip
    _run([str(python), "-P", "-c", _PROBE], env=env, timeout=120, cwd=env_dir)


@functools.cache
def chime_python() -> Path:
    """The Python executable of a venv holding ``workflow-core==1.12.3``.

    The venv is created at ``<repo>/.venv-chime`` on first use and reused afterwards.
    An exclusive ``flock`` on the venv directory serialises concurrent pytest processes;
    the marker file is written (atomically) only after a verified install, so an
    interrupted build is detected and redone.

    Returns:
        Path: ``<repo>/.venv-chime/bin/python``.

    Raises:
        ChimeFailed: If creating the venv or installing the client fails.
    """
    VENV.mkdir(exist_ok=True)
    fd = os.open(VENV, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        python = _venv_python(VENV)
        if not (MARKER.is_file() and python.exists()):
            _install(VENV)
            partial = MARKER.with_name(MARKER.name + ".partial")
            partial.write_text(f"{CHIME_REQUIREMENT}\n{sys.version}\n")
            partial.replace(MARKER)
        return python
    finally:
        os.close(fd)  # also releases the lock


def chime_home(
    tmp_path: Path, server_url: str, sites: Sequence[str] = ("local",), *,
    token: str | None = DUMMY_TOKEN,
) -> dict[str, str]:  # fmt: skip
    """Write a CHIME workspace for ``server_url`` and return an environment using it.

    The CHIME client finds its workspace at ``$HOME/.config/workflow/workspace.yml``
    (fixed at import time), validates every work's ``site`` against its ``sites`` list,
    and reads the base URLs of each backend from ``http.baseurls``.

    Args:
        tmp_path: A per-test directory; the fake home is ``<tmp_path>/home``.
        server_url: Our server, e.g. ``http://127.0.0.1:8123``.
        sites: The sites works may use.
        token: Exported as ``WORKFLOW_HTTP_TOKEN`` (sent as ``x-access-token``);
            ``None`` leaves every token variable unset.

    Returns:
        dict[str, str]: ``os.environ`` without ``WORKFLOW_*``, token and Python-path
        variables, plus ``HOME``, the token and ``PYTHONWARNINGS=ignore``.
    """
    home = tmp_path / "home"
    config = home / ".config" / "workflow"
    config.mkdir(parents=True, exist_ok=True)
    workspace = {
        "workspace": "test",
        "sites": list(sites),
        "http": {
            "baseurls": {
                "buckets": f"{server_url}/buckets",
                "results": f"{server_url}/results",
            }
        },
    }
    (config / "workspace.yml").write_text(yaml.safe_dump(workspace, sort_keys=False))
    dropped = {*TOKEN_VARIABLES, *PYTHON_VARIABLES}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WORKFLOW_") and name not in dropped
    }
    env["HOME"] = str(home)
    env["PYTHONWARNINGS"] = "ignore"
    # requests honours proxy variables; loopback must never go through a proxy.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    if token is not None:
        env["WORKFLOW_HTTP_TOKEN"] = token
    return env


def _describe(args: Iterable[str], stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(value: str | bytes | None) -> str:
        if isinstance(value, bytes):
            return value.decode(errors="replace")
        return value or ""

    return f"command: {list(args)}\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


def _run(
    args: Sequence[str], env: Mapping[str, str] | None, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            args, env=None if env is None else dict(env), cwd=cwd, timeout=timeout,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        detail = _describe(args, exc.stdout, exc.stderr)
        raise ChimeFailed(f"timed out after {timeout}s\n{detail}") from None
    if proc.returncode != 0:
        detail = _describe(args, proc.stdout, proc.stderr)
        raise ChimeFailed(f"exit code {proc.returncode}\n{detail}")
    return proc


def _workdir(env: Mapping[str, str]) -> Path:
    # Never the repository: our own ``workflow`` package must not be importable there.
    return Path(env["HOME"]) if "HOME" in env else VENV


def run_chime(
    python: Path, script: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet with the CHIME venv's interpreter.

    ``-P`` keeps the working directory off ``sys.path``, and the snippet runs in the fake
    home, so ``import workflow`` is always CHIME's package.

    Args:
        python: From :func:`chime_python`.
        script: Python source to run.
        env: From :func:`chime_home` (possibly extended, e.g. with ``PYTHONPATH``).
        timeout: Seconds before the process is killed.

    Returns:
        subprocess.CompletedProcess[str]: The finished process (exit code 0).

    Raises:
        ChimeFailed: On a non-zero exit or a timeout, with stdout and stderr.
    """
    return _run([str(python), "-P", "-c", script], env, timeout, _workdir(env))


def run_chime_cli(
    python: Path, args: Sequence[str], env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CHIME ``workflow`` console script installed next to ``python``.

    Args:
        python: From :func:`chime_python`.
        args: Arguments after ``workflow``, e.g. ``["run", "bucket", "-s", "local"]``.
        env: From :func:`chime_home`.
        timeout: Seconds before the process is killed.

    Returns:
        subprocess.CompletedProcess[str]: The finished process (exit code 0).

    Raises:
        ChimeFailed: On a non-zero exit or a timeout, with stdout and stderr.
    """
    return _run([str(python.parent / "workflow"), *args], env, timeout, _workdir(env))
