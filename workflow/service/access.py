"""Who may call the service: one of the configured tokens, or anyone when none is set."""

from __future__ import annotations

import hmac

from workflow.errors import Unauthorized


def check_token(tokens: frozenset[str], access_token: str | None,
                authorization: str | None) -> None:  # fmt: skip
    """Check a request's ``x-access-token`` or ``Authorization: Bearer`` header.

    Raises:
        Unauthorized: tokens are configured and the request carries none of them.
    """
    if not tokens:
        return
    given = access_token
    if given is None:
        scheme, _, value = (authorization or "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else None
    if not given or not any(hmac.compare_digest(given, token) for token in tokens):
        raise Unauthorized("a valid access token is required (x-access-token or Bearer)")
