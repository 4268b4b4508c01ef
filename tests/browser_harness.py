"""The one way the tests drive a browser: Playwright with Debian's Chromium (imported by name).

Playwright's own browser download is not available offline, so the browser is the system's
``chromium`` (``SLIDENET_CHROMIUM`` overrides the path), started by Playwright with
``executable_path``. Without Playwright or Chromium the browser tests are skipped, unless
``SLIDENET_REQUIRE_BROWSER`` is set (CI sets it, and ``.ci/run`` installs Debian's chromium), in
which case they fail.

* ``launch()``: a context manager that yields a headless Chromium ``Browser`` (or skips/fails).
* ``Watch(page)``: collects console errors, uncaught exceptions, failed requests and HTTP
  responses >= 400 of a page in ``watch.errors``; ``watch.allow(pattern)`` expects some.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

import pytest

__all__ = ["Watch", "find_chromium", "launch"]

FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars")


def find_chromium() -> str | None:
    """The Chromium binary (SLIDENET_CHROMIUM overrides), or None."""
    override = os.environ.get("SLIDENET_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _unavailable(why: str):
    if os.environ.get("SLIDENET_REQUIRE_BROWSER"):
        pytest.fail(
            f"SLIDENET_REQUIRE_BROWSER is set but {why}; install Debian's chromium (apt-get "
            "install chromium) and the test extra (pip install -e '.[test]'), or set "
            "SLIDENET_CHROMIUM"
        )
    pytest.skip(f"{why} (set SLIDENET_REQUIRE_BROWSER=1 to fail instead)")


@contextlib.contextmanager
def launch():
    """A headless Chromium driven by Playwright's sync API; closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    binary = find_chromium()
    if binary is None:
        _unavailable("chromium is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, headless=True, args=list(FLAGS))
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """Everything that went wrong on ``page``: console errors, page exceptions, failed requests
    and error responses, as strings in ``errors`` (those matching an ``allow``ed pattern are
    left out)."""

    def __init__(self, page):
        self.errors: list[str] = []
        self._allowed: list[re.Pattern] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self._add(f"exception: {exc}"))
        page.on("requestfailed", lambda r: self._add(f"request failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def allow(self, pattern: str) -> None:
        self._allowed.append(re.compile(pattern))

    def _add(self, text: str) -> None:
        if not any(p.search(text) for p in self._allowed):
            self.errors.append(text)

    def _console(self, message):
        if message.type in ("error", "assert"):
            self._add(f"console {message.type}: {message.text}")

    def _response(self, response):
        if response.status >= 400:
            self._add(f"HTTP {response.status}: {response.url}")
