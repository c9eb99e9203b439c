"""``python -m webhook``: serve the webhook receiver with uvicorn (settings from the env)."""

from __future__ import annotations

import uvicorn

from webhook.app import create_app
from webhook.settings import Settings
from worker.logs import configure_logging


def main() -> None:
    settings = Settings()  # DATABASE_URL (required) comes from the environment
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.webhook_host,
        port=settings.webhook_port,
        log_config=None,  # our JSON logging, configured above
        access_log=False,  # the access log would print the token in the path
        proxy_headers=True,
        forwarded_allow_ips=settings.webhook_forwarded_allow_ips,
        server_header=False,
    )


if __name__ == "__main__":
    main()
