"""Opening report pages in a real headless browser: Debian's chromium driven by Playwright
(never a browser Playwright downloads). Used by the tests and by
``scripts/report_screenshots.py``; the report itself needs neither.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

# Flags for a headless chromium on a shared machine with no network: nothing starts in
# the background, nothing phones home, no GPU, no sandbox (root in a container).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)


class BrowserUnavailable(RuntimeError):
    """No chromium binary or no Playwright package; the message says how to get them."""


def chromium_path() -> str:
    """The system chromium (``SWESCALE_CHROMIUM`` overrides); raises BrowserUnavailable."""
    for candidate in (os.environ.get("SWESCALE_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise BrowserUnavailable("no chromium: apt-get install -y chromium (scripts/test.sh does)")


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Playwright page in headless chromium (a fresh profile each time: Playwright gives
    every launch its own temporary user-data directory)."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable("no playwright: pip install 'swescale[browser]'") from exc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            # Pages must need nothing from outside: any request that is not a local file
            # is refused (and so fails a test that checks for failed requests).
            context.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith("file://") else route.abort()
                ),
            )
            yield context.new_page()
        finally:
            browser.close()
