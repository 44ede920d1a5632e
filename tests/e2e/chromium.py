"""One way to start Debian's Chromium for end-to-end tests, with the flags this workplace
needs (no sandbox as root, no GPU, and no background traffic to a closed network)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

__all__ = ["CHROMIUM", "chromium_context"]

CHROMIUM = Path("/usr/bin/chromium")
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_context() -> Iterator[Any]:
    """A fresh Playwright browser context in headless Chromium (skip or fail if absent)."""
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and NEVERTRUST_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            yield context
            context.close()
        finally:
            browser.close()
