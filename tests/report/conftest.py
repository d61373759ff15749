"""Fixtures of the report's tests: a headless chromium page (Debian's chromium through
Playwright), shared by the modules that open the report in a browser."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def page():
    from swescale.report.browser import BrowserUnavailable, headless_chromium

    try:
        with headless_chromium() as page:
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.failed_requests, page.console_errors = failed, errors
            yield page
    except BrowserUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
