"""Drive the real CHIME/FRB client (``workflow-core==1.12.3``) from tests.

The CHIME wheel installs a top-level package named ``workflow``, the same name as ours, so
it lives in its own virtual environment (``<repo>/.venv-chime``) and is only ever run in
subprocesses. These helpers build that environment once, write a CHIME workspace that
points at one of our servers, and run Python snippets or the ``workflow`` CLI inside it.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import venvs
import yaml
from venvs import PYTHON_VARIABLES, REPO

#: The client release whose wire protocol we are compatible with (see chime-api.md).
CHIME_REQUIREMENT = "workflow-core==1.12.3"
VENV = REPO / ".venv-chime"
#: Sent as ``x-access-token``; also keeps the client's "token missing" warning away.
DUMMY_TOKEN = "chime-compat-test-token"
#: Variables the CHIME client reads as a token (chime-api.md section 7).
TOKEN_VARIABLES = ("WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN", "GITHUB_TOKEN", "GITHUB_PAT")
#: Confirms, inside the venv, that ``workflow`` is CHIME's package at the right version.
_PROBE = (
    "import importlib.metadata as m, workflow.definitions.work as w; "
    "assert m.version('workflow.core') == '1.12.3', m.version('workflow.core'); "
    "print(w.__file__)"
)


class ChimeFailed(AssertionError):
    """A command run in the CHIME virtual environment failed or timed out."""


@functools.cache
def chime_python() -> Path:
    """The Python executable of a venv holding ``workflow-core==1.12.3``, created at
    ``<repo>/.venv-chime`` on first use and reused afterwards (see ``venvs.built``).

    Raises:
        ChimeFailed: If creating the venv or installing the client fails.
    """
    return venvs.built(VENV, [CHIME_REQUIREMENT], _PROBE, ChimeFailed)


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
                "configs": server_url,
                "pipelines": server_url,
                "schedules": server_url,
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


def _run(args: Sequence[str], env: Mapping[str, str] | None, timeout: float,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return venvs.run(args, env, timeout, cwd, ChimeFailed)


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
