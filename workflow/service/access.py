"""Who may call the service: operators (``WORKFLOW_TOKENS``) may do everything, viewers
(``WORKFLOW_VIEWER_TOKENS``) may read; with no tokens configured, anyone may do
everything (the server then listens on loopback only)."""

from __future__ import annotations

import hmac
from typing import Literal

from workflow.errors import Forbidden, Unauthorized
from workflow.settings import ServerSettings

Role = Literal["operator", "viewer"]
#: Requests that read although they are POSTs (CHIME's filtered views).
READS = frozenset({("POST", "/buckets/view"), ("POST", "/results/view"),
                   ("POST", "/results/view/count")})  # fmt: skip


def role(settings: ServerSettings, access_token: str | None,
         authorization: str | None) -> Role:  # fmt: skip
    """The role of a request's ``x-access-token`` or ``Authorization: Bearer`` token.

    Raises:
        Unauthorized: tokens are configured and the request carries none of them.
    """
    if not settings.tokens:
        return "operator"
    given = access_token
    if given is None:
        scheme, _, value = (authorization or "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else None
    if given:
        if any(hmac.compare_digest(given, token) for token in settings.tokens):
            return "operator"
        if any(hmac.compare_digest(given, token) for token in settings.viewer_tokens):
            return "viewer"
    raise Unauthorized("a valid access token is required (x-access-token or Bearer)")


def check(settings: ServerSettings, method: str, path: str, access_token: str | None,
          authorization: str | None) -> Role:  # fmt: skip
    """The request's role, if it may make this request.

    Raises:
        Unauthorized: no valid token.
        Forbidden: a viewer's request that would change something.
    """
    found = role(settings, access_token, authorization)
    if found == "viewer" and method not in ("GET", "HEAD") and (method, path) not in READS:
        raise Forbidden("this token may read but not change anything (a viewer's token)")
    return found
