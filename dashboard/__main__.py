"""``python -m dashboard``: serve the practice dashboard with uvicorn (settings from the env)."""

from __future__ import annotations

import uvicorn

from common.logs import configure_logging
from dashboard.app import create_app
from dashboard.settings import DashboardSettings


def main() -> None:
    settings = DashboardSettings()  # DATABASE_URL and DASHBOARD_JWT_SECRET from the environment
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.dashboard_forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=3,  # open event streams end; browsers reconnect
    )


if __name__ == "__main__":
    main()
