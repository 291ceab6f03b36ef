"""Debian's chromium for the browser tests: where it is and how to launch it headless."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def require_chromium() -> str:
    """The system chromium; missing is a failure (the Makefile installs it), never a skip."""
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        pytest.fail(
            f"Debian's chromium is not installed ({CHROMIUM} missing): the browser tests need "
            "it. Run `make chromium` (apt-get install chromium).",
            pytrace=False,
        )
    return CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
