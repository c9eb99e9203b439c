"""The Prometheus endpoint every service serves on an address of its own.

Metrics show platform-wide counts, so they are never served on a public port: each service
serves its registry on ``<SERVICE>_METRICS_HOST`` (default ``127.0.0.1``, loopback only) and
``<SERVICE>_METRICS_PORT``, apart from the port it answers clients on. A process that shares
its settings with siblings (the webhook's ``WEBHOOK_WORKERS``) takes the first free port of
``port`` .. ``port + tries - 1``. A busy port is logged, never fatal: the service runs on
without metrics. Used by the webhook and the worker; the dashboard can reuse it.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger("metrics")

LOOPBACK: Final = "127.0.0.1"
_server_lock = threading.Lock()


class MetricsServer:
    """``registry`` served over HTTP (prometheus_client's threaded server) at ``host:port``."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = LOOPBACK) -> None:
        with _server_lock:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_metrics_server(
    registry: CollectorRegistry,
    port: int,
    host: str = LOOPBACK,
    *,
    tries: int = 1,
    service: str = "",
) -> MetricsServer | None:
    """Serve ``registry`` on the first free port of ``port`` .. ``port + tries - 1`` (``port``
    0 disables); when none is free, log it and return None."""
    if port == 0:
        return None
    error: OSError | None = None
    for candidate in range(port, min(port + max(tries, 1), 65536)):
        try:
            server = MetricsServer(registry, candidate, host)
        except OSError as exc:
            error = exc
            continue
        log.info(
            "metrics endpoint listening",
            extra={"fields": {"service": service, "host": host, "port": server.port}},
        )
        return server
    log.error(
        "metrics endpoint not started",
        extra={
            "fields": {"service": service, "host": host, "port": port, "error": str(error)[:200]}
        },
    )
    return None
