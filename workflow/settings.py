"""Configuration from ``WORKFLOW_*`` environment variables, read once where needed."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

from workflow.errors import ConfigurationError
from workflow.jsonsafe import MAX_DEPTH
from workflow.tokens import Keyring
from workflow.wire import LOG_LIMIT, LONGEST_WAIT
from workflow.work import RESULTS_LIMIT

DEFAULT_URL = "http://127.0.0.1:8004"
DEFAULT_PORT = 8004
#: Largest request body, in bytes (``WORKFLOW_MAX_BODY``).
MAX_BODY = 32 * 1024 * 1024
#: Live dashboard streams open at once: in all, and per token or client.
DASHBOARD_STREAMS, DASHBOARD_STREAMS_PER_CALLER = 100, 10


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}", field=name) from None


@dataclass(frozen=True)
class ServerSettings:
    """How ``workflow serve`` runs.

    Attributes:
        store: Store URL (``WORKFLOW_STORE``); empty means SQLite in the user data dir.
        host: Listen address (``WORKFLOW_HOST``).
        port: Listen port (``WORKFLOW_PORT``).
        keyring: The access tokens and their roles (``WORKFLOW_TOKENS_FILE`` and the
            role variables, see ``workflow.tokens``); none means open, on loopback only.
        results_limit: Largest ``results`` in bytes of JSON (``WORKFLOW_RESULTS_LIMIT``).
        log_limit: Bytes of each attempt's log kept in the store, its end
            (``WORKFLOW_LOG_LIMIT``, at least 1024; the whole log goes to the archive).
        reap_interval: Seconds between lease-expiry sweeps (``WORKFLOW_REAP_INTERVAL``).
        max_body: Largest request body in bytes (``WORKFLOW_MAX_BODY``); larger gets 413.
        max_depth: Deepest nesting of a JSON request body (``WORKFLOW_MAX_DEPTH``);
            deeper gets 413.
        archive: Where runners archive products and plots (``WORKFLOW_ARCHIVE``): the
            only folder whose files the server hands out (``GET /files``).
        dashboard_interval: Least seconds between two dashboard snapshots, one shared by
            every live stream (``WORKFLOW_DASHBOARD_INTERVAL``).
        dashboard_streams: Live dashboard streams open at once, in all
            (``WORKFLOW_DASHBOARD_STREAMS``); one more gets 429.
        dashboard_streams_per_caller: The same for one token, or on an open server one
            client address (``WORKFLOW_DASHBOARD_STREAMS_PER_CALLER``).
        files_secret: The key that signs links to those files (``WORKFLOW_FILES_SECRET``,
            for servers that share links behind one address); random for each server.
        max_wait: Longest a withdraw is held waiting for work, in seconds, whatever it
            asks for (``WORKFLOW_MAX_WAIT``, 0 to 30; lower it below the idle timeout of
            a proxy in front of the server).
        notify_targets: Where notifications may go, by name (``WORKFLOW_NOTIFY_TARGETS``:
            a JSON object, or the path of a file holding one; see
            ``workflow.notify.targets``). Their secrets stay on the server.
        notify_slack: The target CHIME's ``notify.slack`` goes to
            (``WORKFLOW_NOTIFY_SLACK``, default ``slack``).
        notify_tries: Tries before a notification is given up on
            (``WORKFLOW_NOTIFY_TRIES``, 1 to 100).
        notify_backoff: The longest wait between two tries of a notification, in
            seconds (``WORKFLOW_NOTIFY_BACKOFF``; the waits double from 1 s up to it).
        public_url: The web UI's address as people reach it, for the links in
            notifications (``WORKFLOW_PUBLIC_URL``; default this server's address).
        fast_paths: Answer the runners' calls (withdraw, complete, exchange, heartbeat)
            on the event loop, without FastAPI's per-request machinery
            (``WORKFLOW_FAST_PATHS``, ``0`` to serve them through FastAPI like every
            other route; the same models, auth and errors either way).
    """

    store: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    keyring: Keyring = field(default_factory=lambda: Keyring([]))
    results_limit: int = RESULTS_LIMIT
    log_limit: int = LOG_LIMIT
    reap_interval: float = 5.0
    max_body: int = MAX_BODY
    max_depth: int = MAX_DEPTH
    archive: str = ""
    dashboard_interval: float = 1.0
    dashboard_streams: int = DASHBOARD_STREAMS
    dashboard_streams_per_caller: int = DASHBOARD_STREAMS_PER_CALLER
    files_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    max_wait: float = 30.0
    fast_paths: bool = True
    notify_targets: dict[str, Any] = field(default_factory=dict, repr=False)
    notify_slack: str = "slack"
    notify_tries: int = 20
    notify_backoff: float = 300.0
    public_url: str = ""

    @classmethod
    def from_env(cls, **overrides: object) -> ServerSettings:
        """Settings from the environment; ``overrides`` that are not None win."""
        values: dict[str, object] = {
            "store": os.environ.get("WORKFLOW_STORE", ""),
            "host": os.environ.get("WORKFLOW_HOST", "127.0.0.1"),
            "port": int(_number("WORKFLOW_PORT", DEFAULT_PORT)),
            "keyring": Keyring.from_env(),
            "results_limit": int(_number("WORKFLOW_RESULTS_LIMIT", RESULTS_LIMIT)),
            "log_limit": int(_number("WORKFLOW_LOG_LIMIT", LOG_LIMIT)),
            "reap_interval": _number("WORKFLOW_REAP_INTERVAL", 5.0),
            "max_body": int(_number("WORKFLOW_MAX_BODY", MAX_BODY)),
            "max_depth": int(_number("WORKFLOW_MAX_DEPTH", MAX_DEPTH)),
            "archive": os.environ.get("WORKFLOW_ARCHIVE", ""),
            "dashboard_interval": _number("WORKFLOW_DASHBOARD_INTERVAL", 1.0),
            "dashboard_streams": int(_number("WORKFLOW_DASHBOARD_STREAMS", DASHBOARD_STREAMS)),
            "dashboard_streams_per_caller": int(_number("WORKFLOW_DASHBOARD_STREAMS_PER_CALLER",
                                                        DASHBOARD_STREAMS_PER_CALLER)),
            "files_secret": os.environ.get("WORKFLOW_FILES_SECRET") or None,
            "max_wait": _number("WORKFLOW_MAX_WAIT", 30.0),
            "fast_paths": os.environ.get("WORKFLOW_FAST_PATHS", "1").lower()
            not in ("0", "false", "no", "off"),
            "notify_targets": _targets(os.environ.get("WORKFLOW_NOTIFY_TARGETS", "")),
            "notify_slack": os.environ.get("WORKFLOW_NOTIFY_SLACK") or None,
            "notify_tries": int(_number("WORKFLOW_NOTIFY_TRIES", 20)),
            "notify_backoff": _number("WORKFLOW_NOTIFY_BACKOFF", 300.0),
            "public_url": os.environ.get("WORKFLOW_PUBLIC_URL") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values = {k: v for k, v in values.items() if v is not None}  # unset: the default
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def link_base(self) -> str:
        """The web UI's address for links: ``public_url``, else this server's (its host
        name when it listens on every address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = socket.getfqdn() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def check(self) -> None:
        """Refuse a non-loopback listen address without tokens, and nonsense numbers."""
        roles = self.keyring.roles()
        if self.keyring and not roles["operator"] + roles["admin"]:
            raise ConfigurationError("no token has the operator or admin role: nobody could "
                                     "act on works (see WORKFLOW_OPERATOR_TOKENS)",
                                     field="tokens")  # fmt: skip
        if not is_loopback(self.host) and not self.keyring:
            raise ConfigurationError(
                f"refusing to listen on {self.host} without access tokens: set "
                "WORKFLOW_TOKENS_FILE (or a WORKFLOW_*_TOKENS variable) or listen on 127.0.0.1",
                field="host",
            )
        if self.reap_interval <= 0:
            raise ConfigurationError("WORKFLOW_REAP_INTERVAL must be positive", field="reap")
        if self.max_body < 1024:
            raise ConfigurationError("WORKFLOW_MAX_BODY must be at least 1024 bytes",
                                     field="max_body")  # fmt: skip
        if not 2 <= self.max_depth <= 200:
            raise ConfigurationError("WORKFLOW_MAX_DEPTH must be between 2 and 200",
                                     field="max_depth")  # fmt: skip
        if self.results_limit <= 0:
            raise ConfigurationError("WORKFLOW_RESULTS_LIMIT must be positive", field="limit")
        if self.log_limit < 1024:
            raise ConfigurationError("WORKFLOW_LOG_LIMIT must be at least 1024 bytes",
                                     field="log_limit")  # fmt: skip
        if not 0 <= self.max_wait <= LONGEST_WAIT:
            raise ConfigurationError(f"WORKFLOW_MAX_WAIT must be between 0 and "
                                     f"{LONGEST_WAIT:g} seconds", field="max_wait")  # fmt: skip
        if not 0.1 <= self.dashboard_interval <= 60:
            raise ConfigurationError("WORKFLOW_DASHBOARD_INTERVAL must be 0.1 to 60 seconds",
                                     field="dashboard_interval")  # fmt: skip
        for name, streams in (("STREAMS", self.dashboard_streams),
                              ("STREAMS_PER_CALLER", self.dashboard_streams_per_caller)):
            if streams < 1:
                raise ConfigurationError(f"WORKFLOW_DASHBOARD_{name} must be at least 1",
                                         field=f"dashboard_{name.lower()}")  # fmt: skip
        if not 1 <= self.notify_tries <= 100:
            raise ConfigurationError("WORKFLOW_NOTIFY_TRIES must be 1 to 100",
                                     field="notify_tries")  # fmt: skip
        if not 1 <= self.notify_backoff <= 86400:
            raise ConfigurationError("WORKFLOW_NOTIFY_BACKOFF must be 1 to 86400 seconds",
                                     field="notify_backoff")  # fmt: skip
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigurationError("WORKFLOW_PUBLIC_URL must be an http or https address",
                                     field="public_url")  # fmt: skip
        if len(self.files_secret) < 16:
            raise ConfigurationError("WORKFLOW_FILES_SECRET must be at least 16 characters",
                                     field="files_secret")  # fmt: skip


def _targets(value: str) -> dict[str, Any]:
    """The notification targets (read only by a server: the parsing is there)."""
    from workflow.notify.targets import load_targets

    return dict(load_targets(value)) if value.strip() else {}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientSettings:
    """Where a client finds the server: ``WORKFLOW_URL``, ``WORKFLOW_TOKEN``,
    ``WORKFLOW_TIMEOUT`` (seconds per HTTP call)."""

    url: str = DEFAULT_URL
    token: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls) -> ClientSettings:
        """Settings from the environment."""
        return cls(
            url=os.environ.get("WORKFLOW_URL") or DEFAULT_URL,
            token=os.environ.get("WORKFLOW_TOKEN") or None,
            timeout=_number("WORKFLOW_TIMEOUT", 10.0),
        )
