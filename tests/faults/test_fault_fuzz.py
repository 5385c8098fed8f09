"""Fault tier: schemathesis generates requests from the running server's own OpenAPI
schema (every operation, with an admin's token) and sends them over HTTP. None may get
a 5xx, and the server must still be up and have logged no traceback afterwards.

The run is bounded (examples per operation, a fixed seed) so that CI is repeatable;
``WORKFLOW_TEST_FUZZ_EXAMPLES`` and ``WORKFLOW_TEST_FUZZ_SEED`` widen or vary it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness import Server

pytestmark = pytest.mark.slow

TOKEN = "fuzzing-admin-token-000001"


@pytest.mark.parametrize("values", ["schema", "hostile"])
def test_generated_requests_get_no_server_error(make_server: Callable[..., Server],
                                                tmp_path: Path, values: str) -> None:  # fmt: skip
    """``schema``: values that fit the schema, and some that do not; ``hostile``: each
    request also carries one hostile value (``hostile_hooks``)."""
    # Held withdraws (wait up to 30 s) would make the run last: hold none, briefly.
    server = make_server(env={"WORKFLOW_TOKENS": f"fuzzer={TOKEN}", "WORKFLOW_MAX_WAIT": "0.05"})
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    if values == "hostile":
        here = str(Path(__file__).parent)
        env.update(SCHEMATHESIS_HOOKS="hostile_hooks",
                   PYTHONPATH=os.pathsep.join([here, env.get("PYTHONPATH", "")]))
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert command, "schemathesis is a test dependency (pip install -e '.[test]')"
    # Hooks apply to the generated (fuzzing) phase only: more of it for hostile values.
    examples = os.environ.get("WORKFLOW_TEST_FUZZ_EXAMPLES", "20" if values == "hostile" else "10")
    seed = os.environ.get("WORKFLOW_TEST_FUZZ_SEED", "20261123")
    run = subprocess.run(
        [command, "run", f"{server.url}/openapi.json",
         "--header", f"Authorization: Bearer {TOKEN}",
         "--checks", "not_a_server_error",
         "--max-examples", examples, "--seed", seed,
         "--exclude-path", "/ui/events",  # a stream that never ends by itself
         "--request-timeout", "30", "--no-shrink", "--workers", "1"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path, env=env,
    )  # fmt: skip
    report = run.stdout[-6000:]
    assert run.returncode == 0, report
    assert "Tested: " in report and "generated" in report, report
    assert httpx.get(f"{server.url}/version", timeout=10).status_code == 200, "still up"
    log = server.log.read_text() if server.log else ""
    assert "Traceback" not in log, log[-4000:]
