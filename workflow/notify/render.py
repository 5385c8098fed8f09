"""A message from the outbox as each kind of target says it: Slack's text (with CHIME's
``notify.slack`` options), a mail's subject and text, a webhook's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
_MARK = {"success": ":white_check_mark:", "failure": ":x:", "retrying": ":repeat:",
         "fired": ":rotating_light:", "cleared": ":white_check_mark:",
         "test": ":wave:"}  # fmt: skip
#: Characters of results, products or plots a Slack message or a mail shows at most.
SHOWN = 2000


@dataclass(frozen=True)
class Message:
    """One message of the outbox, ready to say.

    Attributes:
        doc: The outbox's message (``workflow.notices.note``).
        link: The web UI page it is about, if the server knows its public address.
    """

    doc: Doc
    link: str | None

    @property
    def key(self) -> str:
        return str(self.doc["idempotency"])

    @property
    def event(self) -> str:
        return str(self.doc["event"])

    @property
    def subject_doc(self) -> Doc:
        return self.doc.get("subject") or {}

    def headline(self) -> str:
        """One line: what happened, to what."""
        told, event = self.subject_doc, self.event
        if self.doc.get("work") is not None:
            what = f"work {told.get('id')} of pipeline {told.get('pipeline')}"
            tries = f"attempt {told.get('attempt')} of {int(told.get('retries') or 0) + 1}"
            said = {"success": f"{what} succeeded ({tries})",
                    "failure": f"{what} failed for good ({tries})",
                    "retrying": f"{what}: {tries} failed; it is queued again"}.get(event)
            return said or f"{what}: {event}"
        if "rule" in told:
            rule = told["rule"]
            said = (f"pipeline {told.get('pipeline')}: rule {rule.get('name')} "
                    f"({rule.get('kind')}) {event}: {told.get('message', '')}")  # fmt: skip
            return said.rstrip(": ")
        return str(told.get("message") or f"{event} from workflow")

    def error(self) -> str | None:
        error = self.subject_doc.get("error") or {}
        if not error:
            return None
        return ": ".join(str(p) for p in (error.get("type"), error.get("message")) if p)

    def _extras(self, options: Doc) -> list[tuple[str, Any]]:
        told = self.subject_doc
        return [(name, told.get(name)) for name in ("results", "products", "plots")
                if options.get(name) and told.get(name)]  # fmt: skip

    def slack_text(self) -> str:
        """Slack's ``text`` (mrkdwn): the headline, the error, the link, and what CHIME's
        ``notify.slack`` asks for (members mentioned, a message, results ...)."""
        options = self.doc.get("slack") or {}
        lines = [f"{_MARK.get(self.event, '')} {self.headline()}".strip()]
        if self.error():
            lines.append(f"> {_short(self.error() or '', 500)}")
        if self.link:
            lines.append(f"<{self.link}|Open it in workflow>")
        if options.get("message"):
            lines.append(str(options["message"]))
        if options.get("member_ids"):
            lines.append(" ".join(f"<@{member}>" for member in options["member_ids"]))
        for name, value in self._extras(options):
            lines.append(f"*{name}*: ```{_short(json.dumps(value), SHOWN)}```")
        return "\n".join(lines)

    @property
    def slack_blocks(self) -> list[Any] | None:
        blocks = (self.doc.get("slack") or {}).get("blocks")
        if isinstance(blocks, dict):
            return list(blocks.get("blocks") or [blocks])
        return None

    @property
    def slack_channel(self) -> str | None:
        return (self.doc.get("slack") or {}).get("channel_id")

    def subject(self) -> str:
        return f"[workflow] {_short(self.headline(), 200)}"

    def plain_text(self) -> str:
        """A mail's text."""
        lines = [self.headline()]
        if self.error():
            lines += ["", _short(self.error() or "", 4000)]
        if self.link:
            lines += ["", self.link]
        told = self.subject_doc
        lines += ["", f"key: {self.key}"]
        for name in ("pipeline", "site", "user", "tags", "event"):
            if told.get(name):
                lines.append(f"{name}: {told[name]}")
        return "\n".join(lines) + "\n"

    def webhook_body(self) -> Doc:
        """A webhook's JSON: ``key``, ``event``, ``created`` (when it happened), ``link``,
        and ``work`` (its fields, the last attempt's ``error`` and ``reason``) or
        ``alert`` (the pipeline, the rule and what it saw)."""
        told = "work" if self.doc.get("work") is not None else "alert"
        return {"key": self.key, "event": self.event, "created": self.doc.get("created"),
                "link": self.link, told: self.subject_doc}  # fmt: skip


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
