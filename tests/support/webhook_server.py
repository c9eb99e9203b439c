"""Run the real webhook app with uvicorn on a free loopback port, in a background thread.

Usage::

    server = start_webhook(db_url, webhook_rate_per_token=5)
    httpx.post(f"{server.base_url}/webhooks/mx/{token}", json=...)
    server.stop()

or ``with start_webhook(db_url) as server: ...``. Keyword arguments override settings by
field name (see ``webhook.settings.Settings``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

from common.logs import configure_logging
from scripts.procs import free_port
from tests.support.server_thread import ServerThread, bind_loopback, serve_in_thread
from webhook.app import create_app
from webhook.settings import Settings


@dataclass
class WebhookServer(ServerThread):
    """A running webhook receiver; ``stop()`` shuts it down (lifespan closes the pool)."""

    base_url: str
    settings: Settings
    metrics_url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def __enter__(self) -> WebhookServer:
        return self


def start_webhook(
    database_url: str, *, startup_timeout: float = 10.0, **settings_overrides: Any
) -> WebhookServer:
    """Start the webhook app on 127.0.0.1 (a free port) and wait until it accepts requests;
    its metrics on another free loopback port (``metrics_url``)."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    # the metrics port is chosen while the server's port is held, so it is never the same one
    # (the server socket listens only after the lifespan has started the metrics endpoint)
    settings_overrides.setdefault("webhook_metrics_port", free_port())
    settings = Settings(
        database_url=database_url, webhook_host="127.0.0.1", webhook_port=0, **settings_overrides
    )
    configure_logging(settings.log_level)
    server, thread = serve_in_thread(
        create_app(settings),
        sock,
        "webhook server",
        startup_timeout,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.webhook_forwarded_allow_ips,
    )
    metrics_url = f"http://{settings.webhook_metrics_host}:{settings.webhook_metrics_port}/metrics"
    return WebhookServer(f"http://127.0.0.1:{port}", settings, metrics_url, server, thread)
