"""Virtual environments for tests that need another package's own world (CHIME's client,
ewokscore): built once at ``<repo>/.venv-NAME``, reused, and rebuilt when interrupted."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Variables that would let our own package or venv leak into another venv.
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


class VenvFailed(AssertionError):
    """A command run in a test venv failed or timed out."""


def built(folder: Path, requirements: Sequence[str], probe: str,
          failed: type[AssertionError] = VenvFailed) -> Path:  # fmt: skip
    """The Python of the venv at ``folder`` holding ``requirements``.

    An exclusive ``flock`` on the folder serialises concurrent pytest processes; a
    marker naming the requirements is written (atomically) only after ``probe`` (a
    Python snippet) ran in the new venv, so an interrupted build is redone.
    """
    folder.mkdir(exist_ok=True)
    marker = folder / ".installed"
    wanted = "\n".join([*requirements, sys.version])
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        python = folder / "bin" / "python"
        if not (marker.is_file() and marker.read_text() == wanted and python.exists()):
            # clear=True empties the folder but keeps it, so the lock stays valid.
            venv.EnvBuilder(clear=True, with_pip=True, symlinks=True).create(folder)
            env = {k: v for k, v in os.environ.items() if k not in PYTHON_VARIABLES}
            run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-input", *requirements], env, 900, folder, failed)  # fmt: skip
            run([str(python), "-P", "-c", probe], env, 120, folder, failed)
            partial = marker.with_name(marker.name + ".partial")
            partial.write_text(wanted)
            partial.replace(marker)
        return python
    finally:
        os.close(fd)  # also releases the lock


def run(args: Sequence[str], env: Mapping[str, str] | None, timeout: float, cwd: Path | None,
        failed: type[AssertionError] = VenvFailed) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``args``; ``failed`` (with stdout and stderr) on a non-zero exit or a timeout.

    The command runs in a process group of its own, killed when it ends, and writes to
    files rather than pipes: a process it leaves behind (a pool worker, say) can neither
    outlive the call nor hold it up by keeping a pipe open.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(args, env=None if env is None else dict(env), cwd=cwd,
                                   stdout=out, stderr=err, start_new_session=True)  # fmt: skip
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code is None:
        raise failed(f"timed out after {timeout}s\n{_describe(args, stdout, stderr)}")
    if code != 0:
        raise failed(f"exit code {code}\n{_describe(args, stdout, stderr)}")
    return subprocess.CompletedProcess(list(args), code, stdout, stderr)


def _describe(args: Iterable[str], stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(value: str | bytes | None) -> str:
        if isinstance(value, bytes):
            return value.decode(errors="replace")
        return value or ""

    return f"command: {list(args)}\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"
