"""``workflow notifications ...``: the outbox's messages, the targets the server has, a
test message, the pipelines' alerts; and ``workflow buckets rules``: a pipeline's
alert rules."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from workflow import views
from workflow.cli_connect import connect
from workflow.cli_pipelines import as_json_option, listing

if TYPE_CHECKING:
    from workflow.client import Client

STATES = ("pending", "sending", "recording", "done")


@click.command("ls")
@click.option("--work", help="Only the messages about this work.")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES),
              help="Only messages in this state, repeatable (pending: not delivered yet).")
@click.option("--target", help="Only the messages to this target.")
@click.option("--limit", default=50, type=click.IntRange(1, 1000), help="Messages to show.")
@as_json_option
@connect
@click.pass_obj
def ls(client: Client, work: str | None, states: tuple[str, ...], target: str | None,
       limit: int, as_json: bool) -> None:  # fmt: skip
    """Notifications, newest first: what, to whom, and how it went."""
    found = client.notifications(work=work, states=states, target=target, limit=limit)
    table = listing(found, as_json, "no notification", "Notifications",
                    ("key", "target", "state", "outcome", "tries", "when", "detail"))
    if table is None:
        return
    for doc in found:
        waiting = doc["state"] in ("pending", "sending")
        when = f"next {views.when(doc['due'])}" if waiting and doc["tries"] else views.when(
            doc.get("settled") or doc["created"])
        table.add_row(doc["idempotency"], doc["target"], doc["state"], doc.get("outcome") or "",
                      str(doc["tries"]), when, doc.get("detail") or "")  # fmt: skip
    views.show(table)


@click.command()
@as_json_option
@connect
@click.pass_obj
def targets(client: Client, as_json: bool) -> None:
    """The targets configured on the server (WORKFLOW_NOTIFY_TARGETS): name, kind, host."""
    found = client.notification_targets()
    table = listing(found["targets"], as_json, "no target is configured on the server (see "
                    "WORKFLOW_NOTIFY_TARGETS)", "Notification targets",
                    ("name", "type", "where", ""))  # fmt: skip
    if table is None:
        return
    for target in found["targets"]:
        mark = "CHIME's notify.slack" if target["name"] == found["slack"] else ""
        table.add_row(target["name"], target["type"], target["where"], mark)
    views.show(table)


@click.command()
@click.argument("target")
@click.option("--message", help="What to say (default: a test message).")
@connect
@click.pass_obj
def test(client: Client, target: str, message: str | None) -> None:
    """Send a test message to TARGET now and say how it went (operators)."""
    sent = client.test_notification(target, message)
    if not sent["ok"]:
        click.echo(f"error: {target} did not take it: {sent['detail']}", err=True)
        sys.exit(1)
    click.echo(f"delivered to {target}: {sent['detail'][:200]}")


@click.command()
@as_json_option
@connect
@click.pass_obj
def alerts(client: Client, as_json: bool) -> None:
    """The pipelines' alert rules that were looked at: firing or clear, since when."""
    found = client.alerts()
    table = listing(found, as_json, "no alert rule has been looked at: set one with `workflow "
                    "buckets rules PIPELINE --add JSON`", "Alerts",
                    ("rule", "status", "since", "times fired", "what it saw"))  # fmt: skip
    if table is None:
        return
    for doc in found:
        style = "bold red" if doc["status"] == "firing" else "green"
        table.add_row(doc["id"], Text(doc["status"], style=style), views.when(doc["since"]),
                      str(doc["episode"]),
                      (doc.get("detail") or {}).get("message", ""))  # fmt: skip
    views.show(table)


@click.command()
@click.argument("pipeline")
@click.option("--add", "added", multiple=True, metavar="JSON",
              help='Add (or replace, by name) a rule, e.g. \'{"name": "failing", "kind": '
                   '"failure-rate", "threshold": 0.5, "to": ["slack"]}\'; repeatable.')
@click.option("--rm", "removed", multiple=True, metavar="NAME", help="Remove a rule.")
@as_json_option
@connect
@click.pass_obj
def rules(client: Client, pipeline: str, added: tuple[str, ...], removed: tuple[str, ...],
          as_json: bool) -> None:  # fmt: skip
    """Show or change the alert rules of PIPELINE (kinds: failure-rate with threshold,
    window, minimum; oldest-queued with limit; no-runner)."""
    current = [rule.model_dump(exclude_none=True) for rule in client.settings(pipeline).rules]
    if added or removed:
        new: dict[str, Any] = {rule["name"]: rule for rule in current}
        for name in removed:
            if new.pop(name, None) is None:
                click.echo(f"error: {pipeline} has no rule {name!r}", err=True)
                sys.exit(1)
        for text in added:
            try:
                rule = json.loads(text)
            except ValueError as exc:
                click.echo(f"error: --add: not JSON: {exc}", err=True)
                sys.exit(2)
            if not isinstance(rule, dict) or not isinstance(rule.get("name"), str):
                click.echo("error: --add: a rule is a JSON object with a name", err=True)
                sys.exit(2)
            new[rule["name"]] = rule
        current = [r.model_dump(exclude_none=True)
                   for r in client.configure(pipeline, {"rules": list(new.values())}).rules]
    table = listing(current, as_json, f"{pipeline} has no alert rule",
                    f"Alert rules of {pipeline}", ("name", "kind", "when", "to"))
    if table is None:
        return
    for rule in current:
        when = ", ".join(f"{k} {v}" for k, v in rule.items()
                         if k not in ("name", "kind", "to"))  # fmt: skip
        table.add_row(rule["name"], rule["kind"], when, ", ".join(rule["to"]))
    views.show(table)


COMMANDS = [ls, targets, test, alerts]
