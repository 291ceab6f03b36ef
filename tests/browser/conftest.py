"""Browser-test fixtures: a chromium session against live_server, the screenshot folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.session import DOCS_SCREENSHOTS, BrowserSession


@pytest.fixture
def browser_session(live_server):
    """A chromium started on first login (after the test created its rows), closed after."""
    session = BrowserSession(live_server.url)
    yield session
    session.close()


@pytest.fixture
def screenshot_dir(request, tmp_path) -> Path:
    """docs/screenshots with ``--screenshots``, else a temporary folder."""
    return DOCS_SCREENSHOTS if request.config.getoption("--screenshots") else tmp_path
