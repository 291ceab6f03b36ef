"""Reusable browser helpers: a lazily started chromium, logged-in pages, screenshots.

Playwright's sync API runs an event loop in the test's thread while it is open, which
Django's async-unsafe check refuses: create every row first, then call
:meth:`BrowserSession.login` (the browser starts on first use), as the existing browser
tests do.

Screenshots for the README: ``capture(page, url, "home.png", directory)`` writes one at
1440x900. Run with ``--screenshots`` to write into docs/screenshots/ (otherwise the
``screenshot_dir`` fixture gives a temporary directory, so the normal suite never
rewrites the docs), e.g.::

    pytest tests/browser/test_home_browser.py -k screenshot --screenshots
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.chromium import CHROMIUM_ARGS, TIMEOUT_MS, require_chromium

VIEWPORT = {"width": 1440, "height": 900}
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class BrowserSession:
    """One chromium for a test; each login gets its own context (cookies)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._playwright: Any = None
        self._browser: Any = None

    def _browser_get(self) -> Any:
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            executable = require_chromium()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
        return self._browser

    def login(self, username: str, password: str, *, next_url: str = "/admin/") -> Any:
        """A page logged in through the admin login form, at ``next_url``, 1440x900."""
        context = self._browser_get().new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{self.base_url}/admin/login/?next={next_url}")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_load_state("load")
        return page

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()
            self._browser = self._playwright = None


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the document is wider than the viewport (0: it fits)."""
    return page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def capture(page: Any, url: str, name: str, directory: Path, *, full_page: bool = False) -> Path:
    """Open ``url`` (absolute, or a path on the page's server) at 1440x900 and save a PNG
    called ``name`` in ``directory``; return its path."""
    if url.startswith("/"):
        origin = page.url.split("/admin/", 1)[0]
        url = f"{origin}{url}"
    page.set_viewport_size(VIEWPORT)
    page.goto(url)
    page.wait_for_load_state("load")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    page.screenshot(path=str(target), full_page=full_page)
    return target
