"""A real Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, and screenshots
of every page a test visits in ``artifacts/screenshots/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Without the networking flags Chromium tries to reach Google, which this network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; ``shoot(page, name)`` saves a screenshot as an artifact."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Any:
    """``shoot(page, name)``: a full-page screenshot, named after the test and ``name``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^\w.-]+", "_", request.node.name)

    def save(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shoot_widths(shoot: Any) -> Any:
    """``shoot_widths(page, name)``: screenshots at 1400 px and at 390 px wide (``name``
    then ``-1400`` or ``-390``), checking that at each the page does not scroll sideways;
    the viewport is left at 1400 px."""

    def save(page: Any, name: str) -> list[Path]:
        paths = []
        for size in (WIDE, PHONE):
            page.set_viewport_size(size)
            page.wait_for_timeout(250)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= size["width"], f"{name}: the page is {wide} px wide at {size['width']}"
            paths.append(shoot(page, f"{name}-{size['width']}"))
        page.set_viewport_size(WIDE)
        return paths

    return save
