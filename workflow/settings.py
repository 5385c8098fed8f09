"""Configuration from ``WORKFLOW_*`` environment variables, read once where needed."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from workflow.errors import ConfigurationError
from workflow.work import RESULTS_LIMIT

DEFAULT_URL = "http://127.0.0.1:8004"
DEFAULT_PORT = 8004


def _tokens(raw: str | None) -> frozenset[str]:
    return frozenset(t.strip() for t in (raw or "").split(",") if t.strip())


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
        tokens: Operators' access tokens (``WORKFLOW_TOKENS``, comma-separated): they
            may do everything.
        viewer_tokens: Viewers' access tokens (``WORKFLOW_VIEWER_TOKENS``): they may
            read, and change nothing.
        results_limit: Largest ``results`` in bytes of JSON (``WORKFLOW_RESULTS_LIMIT``).
        reap_interval: Seconds between lease-expiry sweeps (``WORKFLOW_REAP_INTERVAL``).
        archive: Where runners archive products and plots (``WORKFLOW_ARCHIVE``): the
            only folder whose files the server hands out (``GET /files``).
    """

    store: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tokens: frozenset[str] = field(default_factory=frozenset)
    viewer_tokens: frozenset[str] = field(default_factory=frozenset)
    results_limit: int = RESULTS_LIMIT
    reap_interval: float = 5.0
    archive: str = ""

    @classmethod
    def from_env(cls, **overrides: object) -> ServerSettings:
        """Settings from the environment; ``overrides`` that are not None win."""
        values: dict[str, object] = {
            "store": os.environ.get("WORKFLOW_STORE", ""),
            "host": os.environ.get("WORKFLOW_HOST", "127.0.0.1"),
            "port": int(_number("WORKFLOW_PORT", DEFAULT_PORT)),
            "tokens": _tokens(os.environ.get("WORKFLOW_TOKENS")),
            "viewer_tokens": _tokens(os.environ.get("WORKFLOW_VIEWER_TOKENS")),
            "results_limit": int(_number("WORKFLOW_RESULTS_LIMIT", RESULTS_LIMIT)),
            "reap_interval": _number("WORKFLOW_REAP_INTERVAL", 5.0),
            "archive": os.environ.get("WORKFLOW_ARCHIVE", ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse a non-loopback listen address without tokens, and nonsense numbers."""
        if self.viewer_tokens and not self.tokens:
            raise ConfigurationError("WORKFLOW_VIEWER_TOKENS needs WORKFLOW_TOKENS too: "
                                     "without an operator nobody could act", field="tokens")
        if not is_loopback(self.host) and not self.tokens:
            raise ConfigurationError(
                f"refusing to listen on {self.host} without access tokens: "
                "set WORKFLOW_TOKENS or listen on 127.0.0.1",
                field="host",
            )
        if self.reap_interval <= 0:
            raise ConfigurationError("WORKFLOW_REAP_INTERVAL must be positive", field="reap")
        if self.results_limit <= 0:
            raise ConfigurationError("WORKFLOW_RESULTS_LIMIT must be positive", field="limit")


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
