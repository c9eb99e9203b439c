"""The dashboard for tests: the real app with uvicorn on a loopback port (a thread), its
least-privilege login role, signing in over HTTP; the demo world (two practices with staff,
patients, memberships and invoices; ``build_world``) lives in ``scripts/dev_world.py`` and is
re-exported here.

Users sign in with their e-mail and ``PASSWORD`` through the local platform layer's bcrypt
passwords, exactly as a person does in the browser.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from common.logs import configure_logging
from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from scripts.dev_world import (
    LAB,
    PASSWORD,
    SEMA,
    TRT,
    Practice,
    World,
    _user,
    add_user,
    build_world,
)
from tests.support.server_thread import ServerThread, bind_loopback, serve_in_thread

__all__ = [  # the world's names stay importable from here (other modules import them so)
    "LAB",
    "PASSWORD",
    "SEMA",
    "TRT",
    "DashboardServer",
    "Practice",
    "World",
    "_user",
    "add_user",
    "build_world",
    "csrf_token",
    "sign_in",
    "start_dashboard",
]
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class DashboardServer(ServerThread):
    base_url: str
    settings: DashboardSettings
    _server: uvicorn.Server
    _thread: threading.Thread


def start_dashboard(
    database_url: str, *, port: int = 0, host: str = "127.0.0.1", **overrides: Any
) -> DashboardServer:
    values: dict[str, Any] = {
        "database_url": database_url,
        "dashboard_jwt_secret": secrets.token_urlsafe(32),
        "dashboard_cookie_secure": False,  # plain http on loopback (httpx keeps Secure to https)
        "log_level": "WARNING",
    }
    values.update(overrides)
    settings = DashboardSettings(**values)
    configure_logging(settings.log_level)
    sock = bind_loopback(host, port)
    bound = sock.getsockname()[1]
    server, thread = serve_in_thread(
        create_app(settings), sock, "dashboard", 15, timeout_graceful_shutdown=1
    )
    return DashboardServer(f"http://{host}:{bound}", settings, server, thread)


def sign_in(base_url: str, email: str, password: str = PASSWORD) -> httpx.Client:
    """An httpx client signed in through the sign-in form (CSRF token and all)."""
    client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
    page = client.get("/auth/sign-in")
    token = csrf_token(page.text)
    response = client.post(
        "/auth/sign-in", data={"email": email, "password": password, "_csrf_token": token}
    )
    if response.status_code != 303:
        raise AssertionError(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return client


def csrf_token(html: str) -> str:
    found = CSRF_FIELD.search(html)
    if found is None:
        raise AssertionError("no CSRF token in the page")
    return found.group(1)
