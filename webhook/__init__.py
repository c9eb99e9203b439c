"""The thin Litestar receiver of MX Merchant webhook notifications.

``create_app(settings)`` builds the app; ``python -m webhook`` serves it with uvicorn.
Every accepted request makes exactly one SQL call, ``private.ingest_webhook``, which
authenticates the callback-URL token, records, deduplicates and queues the event atomically.
"""

from webhook.app import create_app
from webhook.settings import Settings

__all__ = ["Settings", "create_app"]
