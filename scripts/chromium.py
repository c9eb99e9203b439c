"""Debian's Chromium as Playwright drives it here (the browser tests and ``make screenshots``):
Playwright's own browser download is not reachable, ``--no-sandbox`` as root."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
