"""Access control against a real server: every route of the OpenAPI schema, called with
no token and with a token of each role, answers 401, 403 or gets through exactly as its
declared role says; tokens come from a file of digests and from the environment, and
never show in the server's log."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness import Server

from workflow.tokens import ROLES, allows, entry

#: One token per role: admin and operator from a tokens file (digests only), runner and
#: viewer from the environment, one plain and one as a digest.
TOKENS = {"admin": "admin-secret-000000000001", "operator": "operator-secret-0000000002",
          "runner": "runner-secret-00000000003", "viewer": "viewer-secret-00000000004"}
#: Public routes that still want a credential of their own: a link the server signed.
SIGNED = {"/files/signed"}
#: Values for path parameters.
PARAMETERS = {"id": "no-such-work", "pipeline": "p", "days": "7"}

#: The policy: which role each route needs (a change here is a change of policy).
POLICY = {
    "public": [
        "GET /buckets/version", "HEAD /buckets/version", "GET /results/version",
        "HEAD /results/version", "GET /version", "HEAD /version", "GET /files/signed",
    ],
    "viewer": [
        "GET /buckets/work", "POST /buckets/view", "GET /buckets/status",
        "GET /buckets/status/details/{pipeline}", "GET /buckets/status/pipelines",
        "GET /buckets/audit/stale/{days}", "GET /buckets/work/{id}", "GET /buckets/counts",
        "GET /buckets/work/{id}/why", "GET /buckets/runners", "GET /buckets/work/{id}/logs",
        "GET /buckets/pipelines", "GET /buckets/pipelines/{pipeline}", "POST /results/view",
        "POST /results/view/count", "GET /results/status", "GET /results/works",
        "GET /results/export", "GET /results/works/{id}", "GET /ui/whoami", "GET /ui/dashboard",
        "GET /ui/events", "GET /files", "GET /files/link", "GET /pipelines", "GET /pipelines/{id}",
        "GET /schedules", "GET /schedules/{id}", "GET /configs", "GET /configs/count",
        "GET /notifications", "GET /notifications/targets", "GET /notifications/alerts",
        "GET /schedule", "GET /schedule/count",
    ],
    "runner": [
        "POST /buckets/work", "PUT /buckets/work", "POST /buckets/work/withdraw",
        "GET /buckets/audit/failed", "GET /buckets/audit/expired", "POST /buckets/withdraw",
        "POST /buckets/exchange", "POST /buckets/work/{id}/heartbeat",
        "POST /buckets/work/{id}/complete", "POST /buckets/heartbeat", "POST /buckets/complete",
        "POST /buckets/work/{id}/release", "POST /results/results", "POST /buckets/withdraw/end",
        "POST /buckets/runners", "POST /buckets/runners/{id}/goodbye", "POST /buckets/progress",
    ],
    "operator": [
        "DELETE /buckets/work", "POST /buckets/work/delete", "PATCH /buckets/work/{id}",
        "POST /pipelines", "POST /pipelines/{id}/cancel", "POST /pipelines/{id}/retry",
        "POST /schedules/{id}/pause", "POST /schedules/{id}/resume", "DELETE /schedules/{id}",
        "POST /notifications/test",
        "POST /configs", "PUT /configs/cancel", "POST /configs/retry", "DELETE /configs",
        "POST /schedule", "DELETE /schedule",
        "POST /buckets/work/{id}/cancel", "POST /buckets/work/{id}/retry",
        "PATCH /buckets/pipelines/{pipeline}", "POST /buckets/pipelines/{pipeline}/pause",
        "POST /buckets/pipelines/{pipeline}/resume", "POST /buckets/bulk", "PUT /results/results",
        "POST /results/retry",
    ],
    "admin": [
        "DELETE /results/results",
    ],
}


def _start(make_server: Callable[..., Server], tmp_path: Path) -> Server:
    tokens_file = tmp_path / "tokens.toml"
    tokens_file.write_text(entry("ada", "admin", TOKENS["admin"])
                           + entry("otto", "operator", TOKENS["operator"]))  # fmt: skip
    viewer_digest = entry("x", "viewer", TOKENS["viewer"]).split('sha256 = "')[1][:64]
    return make_server(env={"WORKFLOW_TOKENS_FILE": str(tokens_file),
                            "WORKFLOW_RUNNER_TOKENS": f"rita={TOKENS['runner']}",
                            "WORKFLOW_VIEWER_TOKENS": f"vic=sha256:{viewer_digest}"},
                       args=["--log-level", "debug"])  # fmt: skip


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            url = re.sub(r"\{(\w+)\}", lambda m: PARAMETERS[m.group(1)], path)
            found.append((method.upper(), url, operation["x-role"]))
    return found


def _templates(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(method.upper(), path, operation["x-role"])
            for path, operations in schema["paths"].items()
            for method, operation in operations.items()]  # fmt: skip


def _status(http: httpx.Client, method: str, url: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    # A stream (the dashboard's events) answers its status first: read no further.
    with http.stream(method, url, json=body, headers=headers) as reply:
        return reply.status_code


def test_every_route_answers_each_role_as_it_declares(
        make_server: Callable[..., Server], tmp_path: Path) -> None:  # fmt: skip
    server = _start(make_server, tmp_path)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        schema = http.get("/openapi.json").json()
        operations = _operations(schema)
        assert len(operations) > 40
        declared = {role: sorted(f"{m} {p}" for m, p, r in _templates(schema) if r == role)
                    for role in POLICY}  # fmt: skip
        assert declared == {role: sorted(routes) for role, routes in POLICY.items()}
        checked = 0
        for n, (method, url, needed) in enumerate(operations):
            anonymous = _status(http, method, url, {})
            if needed == "public":
                assert anonymous == (401 if url in SIGNED else 200), (method, url)
                continue
            assert anonymous == 401, (method, url)
            assert _status(http, method, url, {"x-access-token": "not-a-known-token"}) == 401
            for role in ROLES:
                token = TOKENS[role]
                # CHIME's header and Bearer, taking turns.
                header = ({"x-access-token": token} if (n + ROLES.index(role)) % 2
                          else {"Authorization": f"Bearer {token}"})  # fmt: skip
                status = _status(http, method, url, header)
                if allows(role, needed):
                    assert status not in (401, 403), (method, url, role, status)
                else:
                    assert status == 403, (method, url, role, status)
                checked += 1
        assert checked >= 4 * 40
    log = server.log.read_text() if server.log else ""
    assert "GET /openapi.json" in log  # the access log was on, and still:
    for token in TOKENS.values():
        assert token not in log


def test_a_refusal_names_the_role_needed(make_server: Callable[..., Server],
                                         tmp_path: Path) -> None:  # fmt: skip
    server = _start(make_server, tmp_path)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        reply = http.post("/buckets/work/x/cancel", headers={"x-access-token": TOKENS["runner"]})
        assert reply.status_code == 403
        assert reply.json() | {"message": ""} == {
            "error": "Forbidden", "message": "", "field": "token", "needs": "operator",
            "role": "runner"}  # fmt: skip
        assert "rita" in reply.json()["message"]
        # The hot paths (answered before FastAPI) check the same way.
        reply = http.post("/buckets/withdraw", json={"pipelines": ["p"]},
                          headers={"Authorization": f"Bearer {TOKENS['viewer']}"})  # fmt: skip
        assert reply.status_code == 403 and reply.json()["needs"] == "runner"
        reply = http.post("/buckets/withdraw", json={"pipelines": ["p"]})
        assert reply.status_code == 401 and reply.json()["field"] == "token"


def test_actions_are_recorded_under_the_token_name(make_server: Callable[..., Server],
                                                   tmp_path: Path) -> None:  # fmt: skip
    server = _start(make_server, tmp_path)
    operator = {"x-access-token": TOKENS["operator"], "X-Workflow-User": "someone else"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        (id,) = http.post("/buckets/work", params={"return_ids": True}, json=[{"pipeline": "p"}],
                          headers={"x-access-token": TOKENS["runner"]}).json()  # fmt: skip
        http.patch(f"/buckets/work/{id}", json={"priority": 5}, headers=operator).raise_for_status()
        history = http.get(f"/buckets/work/{id}", headers=operator).json()["history"]
        assert history[-1]["by"] == "otto"
