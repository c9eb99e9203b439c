"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download), one
browser per module, and the running webhook and worker the live test posts through."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.dashboard import PASSWORD, DashboardServer, start_dashboard
from tests.support.dashboard_fixtures import Dash

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "browser",
    "open_tab",
    "page",
    "server",
    "sign_in",
    "start_worker",
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser(dash: Dash) -> Iterator[Browser]:
    """Set up after ``dash``: Playwright's sync API keeps an event loop running in this
    thread, where pytest-asyncio could not build the async fixture any more."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run make setup (scripts/system_packages.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(dash: Dash) -> Iterator[DashboardServer]:
    """A dashboard with Secure cookies, as in production (Chromium treats localhost as
    secure)."""
    started = start_dashboard(dash.dashboard_db_url, dashboard_cookie_secure=True)
    try:
        yield started
    finally:
        started.stop()


@contextmanager
def open_tab(
    browser: Browser, base_url: str, timeout_ms: int = 10_000, **options: Any
) -> Iterator[Page]:
    """A tab of a fresh browser context on the dashboard at ``base_url`` (as localhost, which
    Chromium treats as secure); ``options`` go to ``new_context``. Closed after."""
    context = browser.new_context(base_url=base_url.replace("127.0.0.1", "localhost"), **options)
    context.set_default_timeout(timeout_ms)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, server: DashboardServer) -> Iterator[Page]:
    with open_tab(browser, server.base_url) as tab:
        yield tab


def sign_in(page: Page, email: str) -> None:
    """Sign in through the form as a person does, landing on the Memberships page."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    page.get_by_label("E-mail").first.fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Memberships")).to_be_visible()


def start_worker(
    database_url: str, mx_base_url: str, log: Path, **settings: str
) -> subprocess.Popen[bytes]:
    """``python -m worker run`` as its own process, as in production; ``settings`` override
    its environment (``SCHEDULER_ENABLED="true"`` and so on)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MX_BASE_URL": mx_base_url,
        "WORKER_METRICS_PORT": "0",
        "SCHEDULER_ENABLED": "false",
        "WORKER_POLL_INTERVAL_SECONDS": "0.1",
        "ALERT_CHECK_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "run"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
