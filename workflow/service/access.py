"""Who may call which route: every route declares the role it needs (``needs``), and a
request must carry a token of that role or a higher one (``workflow.tokens``).

With no tokens configured the server is open: every request may do everything, and the
server listens on loopback only (``ServerSettings.check``). The token comes in CHIME's
``x-access-token`` header or as ``Authorization: Bearer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request

from workflow.errors import Forbidden, Unauthorized
from workflow.settings import ServerSettings
from workflow.tokens import Role, allows

#: The OpenAPI key under which each operation names its role.
KEY = "x-role"
#: Routes anyone may call: the CHIME client probes ``/version`` before it sends a token.
PUBLIC = "public"


@dataclass(frozen=True)
class Caller:
    """Who made a request: the token's name (None on an open server) and its role."""

    name: str | None
    role: Role


OPEN = Caller(None, "admin")


def caller(settings: ServerSettings, access_token: str | None,
           authorization: str | None) -> Caller:  # fmt: skip
    """Who a request's token belongs to.

    Raises:
        Unauthorized: tokens are configured and the request carries none of them.
    """
    if not settings.keyring:
        return OPEN
    given = access_token
    if given is None:
        scheme, _, value = (authorization or "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else None
    token = settings.keyring.find(given) if given else None
    if token is None:
        raise Unauthorized("a valid access token is required (x-access-token or "
                           "Authorization: Bearer)", field="token")  # fmt: skip
    return Caller(token.name, token.role)


def check(settings: ServerSettings, needed: Role, access_token: str | None,
          authorization: str | None) -> Caller:  # fmt: skip
    """The request's caller, if its role may call a route that needs ``needed``.

    Raises:
        Unauthorized: no valid token.
        Forbidden: the token's role is below ``needed``.
    """
    found = caller(settings, access_token, authorization)
    if not allows(found.role, needed):
        raise Forbidden(f"this needs a token of role {needed} or above; "
                        f"{found.name}'s is {found.role}", field="token",
                        needs=needed, role=found.role)  # fmt: skip
    return found


def needs(role: Role) -> dict[str, Any]:
    """A route's declaration of its role: ``@router.get(path, **needs("viewer"))``."""

    async def guard(request: Request) -> None:
        # The edge (workflow.service.edge) checked the token before the body was read
        # and left the caller in the request's state; checked here only without it.
        if getattr(request.state, "caller", None) is None:
            request.state.caller = check(request.app.state.settings, role,
                                         request.headers.get("x-access-token"),
                                         request.headers.get("authorization"))  # fmt: skip

    return {"dependencies": [Depends(guard)], "openapi_extra": {KEY: role}}


def public() -> dict[str, Any]:
    """A route's declaration that it needs no token."""
    return {"openapi_extra": {KEY: PUBLIC}}


def roles(app: FastAPI) -> dict[tuple[str, str], str]:
    """The role of every operation, by (method, path template).

    Raises:
        RuntimeError: a route declares no role (a mistake in this code base, caught at
            start-up and by the tests).
    """
    found: dict[tuple[str, str], str] = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            role = operation.get(KEY)
            if role is None:
                raise RuntimeError(f"{method.upper()} {path} declares no role (access.needs)")
            found[(method.upper(), path)] = role
    return found


async def current(request: Request) -> Caller:
    """The caller of a request (a dependency: ``Annotated[Caller, Depends(current)]``)."""
    return getattr(request.state, "caller", OPEN)  # type: ignore[no-any-return]


def holder(caller: Caller) -> str | None:
    """The token name a caller reports under, if it may report only on works claimed
    under that name: a runner's. Operators and admins may report on any work."""
    return caller.name if caller.role == "runner" else None


def who(request: Request) -> str | None:
    """The name to record for an action: the token's, or on an open server what the
    caller calls itself (``X-Workflow-User``, set in the web UI)."""
    found: Caller = getattr(request.state, "caller", OPEN)
    return found.name or request.headers.get("x-workflow-user")
