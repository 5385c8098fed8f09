"""A runner host loads only runner code: the runner and the client import nothing of
the server (store, bucket and results verbs, service) nor its web stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: What a runner host must never load.
SERVER = ("workflow.store", "workflow.buckets", "workflow.results", "workflow.service",
          "fastapi", "starlette", "uvicorn")  # fmt: skip
#: Everything a runner host runs: the runner's modules, the client, the CLI and the
#: folder watcher (``workflow watch``), which runs on acquisition hosts beside the runner.
RUNNER = ("workflow.runner", "workflow.runner.loop", "workflow.runner.child",
          "workflow.runner.graphs", "workflow.runner.slot", "workflow.runner.archive",
          "workflow.graph.work", "workflow.client", "workflow.cli", "workflow.watch")  # fmt: skip


def _loaded(*modules: str) -> set[str]:
    """The top modules of ``SERVER`` a fresh interpreter has loaded after importing
    ``modules``."""
    probe = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
             f"print('\\n'.join(m for m in sys.modules if m.startswith({SERVER!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return {line for line in out.splitlines() if line}


def test_the_runner_and_the_client_load_nothing_of_the_server() -> None:
    assert _loaded(*RUNNER) == set()


@pytest.mark.parametrize("module", ["workflow.service.app", "workflow.buckets"])
def test_the_probe_sees_server_modules_where_they_are(module: str) -> None:
    assert module in _loaded(module)


def test_serving_without_the_server_extra_says_what_to_install_in_one_line() -> None:
    # A runner's install has no web stack: here, its import is made to fail.
    code = ("import sys\nsys.modules['uvicorn'] = None\nfrom workflow.cli import main\n"
            "sys.argv = ['workflow', 'serve', '--port', '1']\nmain()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: the server needs its extra packages (uvicorn is missing): "
        "pip install 'workflow[server]'"]
