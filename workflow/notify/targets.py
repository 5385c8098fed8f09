"""Where messages go, configured on the server by name (``WORKFLOW_NOTIFY_TARGETS``), and
how each kind of target is sent to: Slack (an incoming webhook, or a bot's token and a
channel), a webhook of one's own (JSON, signed with HMAC-SHA256) and mail over SMTP.

Secrets (webhook addresses, tokens, shared secrets, passwords) stay here: works and
rules name a target, the API and the web UI see its name, kind and host only.

A send says whether the receiver took the message and, if not, whether trying again
may help: a refusal (an HTTP 4xx but 408, 425 and 429; Slack's ``channel_not_found``;
a mail address refused) is final, anything else (no answer, a 5xx, a rate limit) is
tried again later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
import urllib3
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from workflow.errors import ConfigurationError
from workflow.notify.render import Message
from workflow.work import TARGET

_SETTING = "WORKFLOW_NOTIFY_TARGETS"
#: Answers after which trying again may help.
_TRANSIENT = frozenset({408, 425, 429})
#: Slack API errors that trying again cannot mend.
_SLACK_FINAL = frozenset({"channel_not_found", "not_in_channel", "invalid_auth", "account_inactive",
                          "token_revoked", "no_permission", "is_archived", "invalid_blocks",
                          "msg_too_long", "no_text"})  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """How a send went: ``ok``; else why (``detail``), whether it is ``final``, and
    when the receiver asked to be tried again (``retry_after`` seconds)."""

    ok: bool
    detail: str = ""
    final: bool = False
    retry_after: float | None = None


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timeout: float = Field(default=10.0, gt=0, le=120)


def _web_address(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http or https address")
    return url


class SlackTarget(_Target):
    """Slack: an incoming ``webhook`` address, or a bot ``token`` (with the ``channel``
    to post in unless each work names one; ``api`` is Slack's Web API)."""

    type: Literal["slack"]
    webhook: str | None = None
    token: str | None = None
    channel: str | None = None
    api: str = "https://slack.com/api"

    @model_validator(mode="after")
    def _one_way(self) -> SlackTarget:
        if (self.webhook is None) == (self.token is None):
            raise ValueError("give a webhook address or a bot token, one of them")
        _web_address(self.webhook or self.api, "webhook" if self.webhook else "api")
        return self

    def where(self) -> str:
        return urlsplit(self.webhook or self.api).hostname or ""

    def send(self, message: Message, http: urllib3.PoolManager) -> Sent:
        body: dict[str, Any] = {"text": message.slack_text()}
        if message.slack_blocks is not None:
            body["blocks"] = message.slack_blocks
        if self.webhook is not None:
            return _post(http, self.webhook, orjson.dumps(body), {}, self.timeout)
        channel = message.slack_channel or self.channel
        if not channel:
            return Sent(False, "no channel: the work names none and the target has none",
                        final=True)  # fmt: skip
        headers = {"Authorization": f"Bearer {self.token}"}
        sent = _post(http, f"{self.api.rstrip('/')}/chat.postMessage",
                     orjson.dumps({**body, "channel": channel}), headers, self.timeout)  # fmt: skip
        if not sent.ok:
            return sent
        try:
            answer = json.loads(sent.detail or "{}")
        except ValueError:
            return Sent(False, f"Slack answered no JSON: {sent.detail[:200]}")
        if answer.get("ok"):
            return Sent(True, "ok")
        error = str(answer.get("error"))
        return Sent(False, f"Slack said {error}", final=error in _SLACK_FINAL)


class WebhookTarget(_Target):
    """A webhook of one's own: the message as JSON, signed with ``secret`` (see
    ``signature``), with ``headers`` of one's own (an ``Authorization``, say)."""

    type: Literal["webhook"]
    url: str
    secret: str = Field(min_length=16)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _web(self) -> WebhookTarget:
        _web_address(self.url, "url")
        return self

    def where(self) -> str:
        return urlsplit(self.url).hostname or ""

    def send(self, message: Message, http: urllib3.PoolManager) -> Sent:
        body = orjson.dumps(message.webhook_body())
        stamp = str(int(time.time()))
        headers = {**self.headers, "X-Workflow-Key": message.key,
                   "X-Workflow-Event": message.event, "X-Workflow-Timestamp": stamp,
                   "X-Workflow-Signature": signature(self.secret, stamp, body)}  # fmt: skip
        return _post(http, self.url, body, headers, self.timeout)


class MailTarget(_Target):
    """Mail over SMTP to ``to`` from ``sender``, through ``host``: ``tls`` ``starttls``
    (the default), ``ssl`` or ``none``; ``user`` and ``password`` if it asks."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["mail"]
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1, max_length=100)

    def where(self) -> str:
        return self.host

    def send(self, message: Message, http: urllib3.PoolManager) -> Sent:
        mail = EmailMessage()
        mail["Subject"], mail["From"] = message.subject(), self.sender
        mail["To"] = ", ".join(self.to)
        # The same Message-ID on every try: mail systems drop a repeat by it.
        digest = hashlib.sha256(message.key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@workflow>"
        mail["X-Workflow-Key"], mail["X-Workflow-Event"] = message.key, message.event
        mail.set_content(message.plain_text())
        try:
            kind = smtplib.SMTP_SSL if self.tls == "ssl" else smtplib.SMTP
            with kind(self.host, self.port, timeout=self.timeout) as smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user is not None:
                    smtp.login(self.user, self.password or "")
                refused = smtp.send_message(mail)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:  # fmt: skip
            return Sent(False, f"{type(exc).__name__}: {exc}", final=True)
        except (OSError, smtplib.SMTPException) as exc:
            return Sent(False, f"{type(exc).__name__}: {exc}")
        if refused:
            return Sent(True, f"refused by some: {', '.join(sorted(refused))}")
        return Sent(True, "ok")


Target = Annotated[SlackTarget | WebhookTarget | MailTarget, Field(discriminator="type")]
_TARGETS = TypeAdapter(dict[Annotated[str, Field(pattern=TARGET)], Target])


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Workflow-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed by the
    target's secret, of the ``X-Workflow-Timestamp`` header, a dot, and the body as
    sent. A receiver computes the same and compares in constant time (and may refuse
    a timestamp minutes old, against replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def load_targets(value: str) -> dict[str, SlackTarget | WebhookTarget | MailTarget]:
    """The targets ``WORKFLOW_NOTIFY_TARGETS`` gives: a JSON object of name to target,
    or the path of a file holding one (empty: none).

    Raises:
        ConfigurationError: unreadable, or a target is invalid (naming it and the field).
    """
    text = value.strip()
    if not text:
        return {}
    if not text.startswith("{"):
        try:
            text = Path(text).expanduser().read_text()
        except OSError as exc:
            raise ConfigurationError(f"{_SETTING}: cannot read {text}: {exc.strerror}",
                                     field=_SETTING) from exc  # fmt: skip
    try:
        return _TARGETS.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if len(loc) > 1 and loc[1] in ("slack", "webhook", "mail"):
            del loc[1]  # the kind the type field chose
        where = ".".join(map(str, loc))
        raise ConfigurationError(f"{_SETTING}: {where or 'the targets'}: {first['msg']}",
                                 field=_SETTING) from exc  # fmt: skip


def _post(http: urllib3.PoolManager, url: str, body: bytes, headers: dict[str, str],
          timeout: float) -> Sent:  # fmt: skip
    """POST ``body`` as JSON; the answer's text is the ``detail`` of a success."""
    try:
        reply = http.request("POST", url, body=body, timeout=timeout, retries=False,
                             headers={"Content-Type": "application/json", **headers})  # fmt: skip
    except urllib3.exceptions.HTTPError as exc:
        return Sent(False, f"no answer: {exc}")
    text = reply.data[:2000].decode(errors="replace")
    if 200 <= reply.status < 300:
        return Sent(True, text)
    wait = reply.headers.get("Retry-After")
    retry_after = float(wait) if wait and wait.isdigit() else None
    final = 400 <= reply.status < 500 and reply.status not in _TRANSIENT
    return Sent(False, f"HTTP {reply.status}: {text[:300]}", final=final, retry_after=retry_after)
