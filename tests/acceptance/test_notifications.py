"""Notifications with real processes: a ``workflow serve`` with Slack, webhook and mail
targets pointing at local receivers (an HTTP server for Slack and the webhook,
``aiosmtpd`` for mail), works run by a real ``workflow run`` or finished over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from harness import Server
from receivers import Mailbox, Receiver

from workflow.client import Client
from workflow.wire import Outcome, Withdraw

SECRET = "a-shared-secret-of-some-length"


@pytest.fixture
def receivers() -> Iterator[dict[str, Any]]:
    got = {"bot": Receiver(answer=b'{"ok": true, "ts": "1.2"}').start(),
           "hook": Receiver().start(), "mail": Mailbox().start()}  # fmt: skip
    yield got
    got["bot"].stop()
    got["hook"].stop()
    got["mail"].stop()


def _targets(receivers: dict[str, Any]) -> str:
    return json.dumps({
        "slack": {"type": "slack", "token": "xoxb-not-a-real-one", "api": receivers["bot"].url},
        "portal": {"type": "webhook", "url": f"{receivers['hook'].url}/hook", "secret": SECRET,
                   "headers": {"Authorization": "Bearer portal-token"}},
        "ops": {"type": "mail", "host": "127.0.0.1", "port": receivers["mail"].port,
                "tls": "none", "from": "workflow@example.org", "to": ["ops@example.org"]},
    })  # fmt: skip


def _serve(make_server: Callable[..., Server], receivers: dict[str, Any], **env: str) -> Server:
    return make_server(env={"WORKFLOW_NOTIFY_TARGETS": _targets(receivers),
                            "WORKFLOW_NOTIFY_BACKOFF": "2",
                            "WORKFLOW_PUBLIC_URL": "https://workflow.example.org",
                            **env})  # fmt: skip


def _valid(request: Any) -> bool:
    stamp = request.headers["X-Workflow-Timestamp"]
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(request.headers["X-Workflow-Signature"], f"sha256={mac.hexdigest()}")


def _finish(client: Client, pipeline: str, status: str, n: int = 1) -> list[str]:
    """Finish ``n`` queued works of ``pipeline`` as ``status``, over HTTP; their ids."""
    taken = client.withdraw(Withdraw(pipelines=[pipeline], limit=n))
    error = {"type": "RuntimeError", "message": "made to fail"} if status == "failure" else None
    client.complete_many([Outcome(id=w["id"], attempt=w["attempt"], status=status,  # type: ignore[arg-type]
                                  error=error) for w in taken])  # fmt: skip
    return [w["id"] for w in taken]


def _outbox(server: Server, **params: Any) -> list[dict[str, Any]]:
    return httpx.get(f"{server.url}/notifications", params=params, timeout=10).json()  # type: ignore[no-any-return]


def test_a_work_failing_for_good_is_told_once_to_slack_the_webhook_and_mail(
        make_server: Callable[..., Server], receivers: dict[str, Any],
        runner: Callable[..., Any]) -> None:  # fmt: skip
    server = _serve(make_server, receivers)
    client = Client(server.url)
    [id] = client.deposit([{"pipeline": "told", "function": "usertasks.boom",
                            "parameters": {"x": 3}, "retries": 1, "backoff": 0,
                            "notify": {"slack": {"channel_id": "C0FAIL", "member_ids": ["U042"]},
                                       "on": ["failure"],
                                       "to": [{"target": "portal", "on": ["failure"]},
                                              {"target": "ops", "on": ["failure"]}]}}])  # fmt: skip
    runner("told", url=server.url)
    slack = receivers["bot"].wait(1, timeout=60)
    hook = receivers["hook"].wait(1)
    mail = receivers["mail"].wait(1)
    time.sleep(3)  # anything more would come now: nothing does
    assert len(receivers["bot"].got) == 1 and len(receivers["hook"].got) == 1
    assert len(receivers["mail"].messages) == 1

    said = slack[0].json
    assert slack[0].path == "/chat.postMessage"
    assert slack[0].headers["Authorization"] == "Bearer xoxb-not-a-real-one"
    assert said["channel"] == "C0FAIL"
    for part in (id, "pipeline told", "failed for good", "attempt 2 of 2",
                 "ValueError: bad input 3", f"https://workflow.example.org/#/work/{id}",
                 "<@U042>"):  # fmt: skip
        assert part in said["text"], part

    call = hook[0]
    assert _valid(call), "the signature checks out with the shared secret"
    assert call.headers["X-Workflow-Key"] == f"{id}/2/failure"
    assert call.headers["Authorization"] == "Bearer portal-token"
    body = call.json
    assert body["key"] == f"{id}/2/failure" and body["event"] == "failure"
    assert body["work"]["id"] == id and body["work"]["status"] == "failure"
    assert body["work"]["error"]["message"] == "bad input 3"
    assert body["link"] == f"https://workflow.example.org/#/work/{id}"
    tampered = type(call)(call.path, call.headers, call.body.replace(b"failure", b"success"))
    assert not _valid(tampered)

    assert mail[0]["X-Workflow-Key"] == f"{id}/2/failure"
    assert id in mail[0]["Subject"] and "failed for good" in mail[0]["Subject"]
    assert mail[0]["To"] == "ops@example.org"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        history = client.get(id)["history"]
        deliveries = [e for e in history if e["kind"] == "delivery"]
        if len(deliveries) == 3:
            break
        time.sleep(0.2)
    assert sorted((e["target"], e["outcome"], e["key"], e["tries"]) for e in deliveries) == [
        ("ops", "delivered", f"{id}/2/failure", 1), ("portal", "delivered", f"{id}/2/failure", 1),
        ("slack", "delivered", f"{id}/2/failure", 1)]  # fmt: skip
    listed = _outbox(server, work=id)
    assert {(m["target"], m["outcome"]) for m in listed} == {
        ("slack", "delivered"), ("portal", "delivered"), ("ops", "delivered")}
    shown = subprocess.run([sys.executable, "-m", "workflow", "results", "show", id, "--url",
                            server.url], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0 and "notifications" in shown.stdout
    assert shown.stdout.count(f"{id}/2/failure") == 3 and "delivered" in shown.stdout
    targets = httpx.get(f"{server.url}/notifications/targets").json()
    assert "xoxb" not in json.dumps(targets) and SECRET not in json.dumps(targets)
    assert [t["name"] for t in targets["targets"]] == ["ops", "portal", "slack"]


def test_a_server_killed_before_delivery_delivers_once_after_its_restart_with_the_same_key(
        make_server: Callable[..., Server], receivers: dict[str, Any]) -> None:  # fmt: skip
    receivers["hook"].stop()  # nothing can be delivered before the kill
    server = _serve(make_server, receivers)
    client = Client(server.url)
    portal = {"to": [{"target": "portal", "on": ["failure"]}]}
    [id] = client.deposit([{"pipeline": "killed", "retries": 0, "notify": portal}])
    _finish(client, "killed", "failure")
    deadline = time.monotonic() + 20
    while not (waiting := _outbox(server, work=id)) or not waiting[0]["tries"]:
        assert time.monotonic() < deadline, waiting
        time.sleep(0.1)
    assert waiting[0]["state"] == "pending" and "no answer" in waiting[0]["detail"]
    key = waiting[0]["idempotency"]
    assert client.get(id)["status"] == "failure"
    server.kill()
    receivers["hook"].start()
    server.start()
    got = receivers["hook"].wait(1, timeout=30)
    time.sleep(4)  # a second one would come now
    assert len(receivers["hook"].got) == 1
    assert got[0].headers["X-Workflow-Key"] == key == f"{id}/1/failure"
    assert _valid(got[0])
    deadline = time.monotonic() + 20
    while not any(e["kind"] == "delivery" for e in client.get(id)["history"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_backlog_drains_in_order_after_the_receiver_was_down_a_minute(
        make_server: Callable[..., Server], receivers: dict[str, Any]) -> None:  # fmt: skip
    hook = receivers["hook"]
    hook.stop()
    # (Tries every 2 s at most: 20, the default, would give the first up within the minute.)
    server = _serve(make_server, receivers, WORKFLOW_NOTIFY_TRIES="100")
    client = Client(server.url)
    client.deposit([{"pipeline": "backlog", "retries": 0,
                     "notify": {"to": [{"target": "portal", "on": ["success"]}]}}
                    for _ in range(40)])  # fmt: skip
    down = time.monotonic()
    finished: list[str] = []
    while len(finished) < 40:  # finished one by one through the minute
        finished += _finish(client, "backlog", "success", 2)
        time.sleep(2.5)
    written = [m["idempotency"] for m in reversed(_outbox(server, target="portal", limit=1000))]
    assert written == [f"{id}/1/success" for id in finished]
    time.sleep(max(0.0, 60 - (time.monotonic() - down)))
    waiting = _outbox(server, target="portal", limit=1000)
    assert all(m["outcome"] is None for m in waiting), "none delivered, none given up"
    assert waiting[-1]["tries"] >= 10 and "no answer" in waiting[-1]["detail"]
    hook.start()
    got = hook.wait(40, timeout=60)
    time.sleep(3)
    keys = [r.headers["X-Workflow-Key"] for r in hook.got]
    assert keys == written, "in the order written, each once"
    assert all(_valid(r) for r in got)


def test_a_failure_rate_rule_fires_once_on_crossing_and_again_only_after_it_cleared(
        make_server: Callable[..., Server], receivers: dict[str, Any]) -> None:  # fmt: skip
    server = _serve(make_server, receivers)
    client = Client(server.url)
    rule = {"name": "failing", "kind": "failure-rate", "threshold": 0.5, "window": 600,
            "minimum": 4, "to": ["portal"]}  # fmt: skip
    reply = httpx.patch(f"{server.url}/buckets/pipelines/rated", json={"rules": [rule]})
    assert reply.status_code == 200, reply.text
    client.deposit([{"pipeline": "rated", "retries": 0} for _ in range(60)])
    hook = receivers["hook"]

    def alerts() -> list[Any]:
        time.sleep(1.5)  # a few looks of the rule (every reap interval, 0.2 s here)
        return [r.json for r in hook.got]

    _finish(client, "rated", "success", 3)
    _finish(client, "rated", "failure", 1)
    assert alerts() == []  # 1 of 4
    _finish(client, "rated", "failure", 2)
    fired = alerts()
    assert [(a["event"], a["key"]) for a in fired] == [("fired", "rule:rated/failing/1/fired")]
    assert fired[0]["alert"]["failed"] == 3 and fired[0]["alert"]["finished"] == 6
    assert "3 of 6 works" in fired[0]["alert"]["message"]
    for _ in range(3):
        _finish(client, "rated", "failure", 2)
        assert len(alerts()) == 1  # still above: not again
    _finish(client, "rated", "success", 20)  # 9 of 29: below
    assert [a["event"] for a in alerts()] == ["fired", "cleared"]
    _finish(client, "rated", "failure", 25)  # 34 of 54: above again
    assert [(a["event"], a["key"]) for a in alerts()][2:] == [
        ("fired", "rule:rated/failing/2/fired")]
    states = httpx.get(f"{server.url}/notifications/alerts").json()
    assert [(s["id"], s["status"], s["episode"]) for s in states] == [
        ("rated/failing", "firing", 2)]


def test_the_command_line_shows_targets_tests_one_and_sets_rules(
        make_server: Callable[..., Server], receivers: dict[str, Any]) -> None:  # fmt: skip
    server = _serve(make_server, receivers)
    env = {**os.environ, "WORKFLOW_URL": server.url, "COLUMNS": "200"}

    def workflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workflow", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    shown = workflow("notifications", "targets")
    assert shown.returncode == 0
    assert "portal" in shown.stdout and "CHIME's notify.slack" in shown.stdout
    assert SECRET not in shown.stdout and "xoxb" not in shown.stdout
    tested = workflow("notifications", "test", "portal", "--message", "hello from the test")
    assert tested.returncode == 0 and "delivered to portal" in tested.stdout
    call = receivers["hook"].wait(1)[0]
    assert _valid(call) and call.json["event"] == "test"
    assert "hello from the test" in call.json["alert"]["message"]
    receivers["hook"].status = 404
    refused = workflow("notifications", "test", "portal")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "HTTP 404" in refused.stderr
    unknown = workflow("notifications", "test", "nowhere")
    assert unknown.returncode != 0 and "there are: ops, portal, slack" in unknown.stderr

    rule = '{"name": "nobody", "kind": "no-runner", "to": ["ops"]}'
    added = workflow("buckets", "rules", "lonely", "--add", rule)
    assert added.returncode == 0 and "no-runner" in added.stdout
    bad = workflow("buckets", "rules", "lonely", "--add", '{"name": "x", "kind": "failure-rate", '
                   '"to": ["ops"]}')  # fmt: skip
    assert bad.returncode != 0 and "needs threshold" in bad.stderr and bad.stderr.count("\n") == 1
    Client(server.url).deposit([{"pipeline": "lonely"}])
    receivers["mail"].wait(1)
    alerts = workflow("notifications", "alerts")
    assert alerts.returncode == 0 and "lonely/nobody" in alerts.stdout and "firing" in alerts.stdout
    listed = workflow("notifications", "ls", "--target", "ops", "--json")
    assert [m["idempotency"] for m in json.loads(listed.stdout)] == ["rule:lonely/nobody/1/fired"]
    told = '{"to": [{"target": "portal", "on": ["success"]}]}'
    set_default = workflow("buckets", "defaults", "lonely", "--notify", told)
    assert set_default.returncode == 0 and '"target":"portal"' in set_default.stdout
    assert workflow("buckets", "defaults", "lonely", "--notify", "{").returncode == 2
    removed = workflow("buckets", "rules", "lonely", "--rm", "nobody")
    assert removed.returncode == 0 and "has no alert rule" in removed.stdout
