"""The API docs (``/docs``, ``/redoc``) render in Chromium with the network off: their
scripts and styles come from the server, not from a CDN."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from harness import Server

pytestmark = pytest.mark.slow
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _offline(page: Any) -> list[str]:
    """Refuse every request that leaves this machine; the list of those refused."""
    refused: list[str] = []

    def route(routed: Any, request: Any) -> None:
        if urlsplit(request.url).hostname in ("127.0.0.1", "localhost"):
            routed.continue_()
        else:
            refused.append(request.url)
            routed.abort("internetdisconnected")

    page.route("**/*", route)
    return refused


def test_swagger_ui_lists_the_operations_without_the_internet(server: Server, page: Any,
                                                               shoot: Any) -> None:  # fmt: skip
    refused = _offline(page)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    # Swagger UI breaks long paths with zero-width spaces.
    paths = {text.replace("\u200b", "") for text in
             page.locator(".opblock-summary-path").all_inner_texts()}  # fmt: skip
    assert {"/buckets/withdraw", "/buckets/work", "/results/works/{id}"} <= paths
    assert page.locator(".opblock").count() > 30
    shoot(page, "docs")
    assert refused == [], f"the page reached out: {refused}"


def test_redoc_renders_without_the_internet(server: Server, page: Any, shoot: Any) -> None:
    refused = _offline(page)
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    page.wait_for_function("document.body.innerText.includes('Claim up to limit works')",
                           timeout=20_000)  # fmt: skip
    shoot(page, "redoc")
    # ReDoc's credit line shows Redocly's logo from their site: with the network off it
    # is missing, and nothing else.
    assert refused in ([], [REDOC_LOGO]), f"the page reached out: {refused}"
