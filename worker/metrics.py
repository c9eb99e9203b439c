"""Prometheus metrics of the worker (docs/observability.md lists every one).

The metrics live in a registry of their own, :data:`REGISTRY`, served on
``WORKER_METRICS_HOST:WORKER_METRICS_PORT`` (loopback by default, never the public address) by
``python -m worker run`` through ``common.metrics_server`` (each worker process serves its own
port).
Other modules record through the small helpers here (``observe_event``, ``MxTiming``) or
increment the counters directly, for example reconciliation::

    from worker.metrics import RECONCILE_GAPS
    RECONCILE_GAPS.inc(missed)   # webhooks MX never sent, found by paging its list API

The queue gauges are refreshed from Postgres by :class:`QueueGauges`, at most once every
``WORKER_METRICS_REFRESH_SECONDS`` and only while somebody scrapes: a scrape storm costs no
database call, and an unscraped worker makes none.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from common.metrics_server import LOOPBACK, MetricsServer
from common.metrics_server import start_metrics_server as _start_server

log = logging.getLogger("worker.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "mx_worker_events",
    "Queued events finished by this worker, by outcome (processed, retrying, dead, released, "
    "unrecorded) and MX event type.",
    ["outcome", "event_type"],
    registry=REGISTRY,
)
EVENT_SECONDS = Histogram(
    "mx_worker_event_seconds",
    "Time from claiming an event to its outcome, seconds.",
    ["outcome"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
QUEUE_MESSAGES = Gauge(
    "mx_worker_queue_messages",
    "Messages in a queue (mx_ingest; mx_ingest_dlq is the dead-letter depth), visible or not.",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_OLDEST_SECONDS = Gauge(
    "mx_worker_queue_oldest_message_age_seconds",
    "Age of the oldest message in a queue, seconds (0 when empty).",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_REFRESHED = Gauge(
    "mx_worker_queue_metrics_refreshed_timestamp_seconds",
    "Unix time the queue gauges were last read from Postgres.",
    registry=REGISTRY,
)
MX_REQUEST_SECONDS = Histogram(
    "mx_worker_mx_request_seconds",
    "MX Merchant API requests: time to a complete answer (or failure), seconds.",
    ["method", "endpoint"],
    registry=REGISTRY,
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MX_REQUEST_ERRORS = Counter(
    "mx_worker_mx_request_errors",
    "MX Merchant API requests that failed, by endpoint, HTTP status ('' without an answer) and "
    "kind (timeout, transport, rate_limited, server_error, client_error).",
    ["endpoint", "status", "kind"],
    registry=REGISTRY,
)
RECONCILE_GAPS = Counter(
    "mx_worker_reconcile_gaps",
    "Payments reconciliation found that no webhook had announced (queued by reconciliation).",
    registry=REGISTRY,
)
ALERTS_SENT = Counter(
    "mx_worker_alerts_sent",
    "Alerts delivered, by kind and channel.",
    ["kind", "channel"],
    registry=REGISTRY,
)
ALERT_FAILURES = Counter(
    "mx_worker_alert_delivery_failures",
    "Alert deliveries that failed (retried at the next check), by channel.",
    ["channel"],
    registry=REGISTRY,
)

_ID_SEGMENT = re.compile(r"/-?\d+(?=/|$)")


def endpoint_label(path: str) -> str:
    """A bounded label for an MX path: ids become ``{id}`` (``/payment/{id}``)."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0]) or "/"


def observe_event(event_type: str | None, outcome: str, seconds: float) -> None:
    EVENTS.labels(outcome=outcome, event_type=event_type or "unknown").inc()
    EVENT_SECONDS.labels(outcome=outcome).observe(max(seconds, 0.0))


class MxTiming:
    """Times one MX exchange and counts its failure (``async with`` inside ``MxClient``).

    The client sets ``status`` when an answer arrives; leaving without one is a ``timeout``
    (the total deadline or an httpx timeout) or a ``transport`` error (connection refused,
    reset). A non-2xx answer is ``rate_limited`` (429), ``timeout`` (408), ``server_error``
    (5xx) or ``client_error`` (other 4xx: 401 and 403 are credentials, 404 not found).
    """

    __slots__ = ("endpoint", "method", "started", "status")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.endpoint = endpoint_label(path)
        self.status: int | None = None
        self.started = 0.0

    async def __aenter__(self) -> MxTiming:
        self.started = time.perf_counter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            return  # the caller gave up: no answer to measure
        MX_REQUEST_SECONDS.labels(method=self.method, endpoint=self.endpoint).observe(
            time.perf_counter() - self.started
        )
        kind = error_kind(self.status, exc)
        if kind is not None:
            MX_REQUEST_ERRORS.labels(
                endpoint=self.endpoint,
                status="" if self.status is None else str(self.status),
                kind=kind,
            ).inc()


def error_kind(status: int | None, exc: BaseException | None) -> str | None:
    """The ``kind`` label of a failed MX exchange, or None when it succeeded."""
    if status is None:
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        if cause is None:
            return None
        timeouts = (TimeoutError, httpx.TimeoutException)
        return "timeout" if isinstance(cause, timeouts) else "transport"
    if 200 <= status < 300:
        return None
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    return "client_error"


# ---------------------------------------------------------------- queue gauges


class _ScrapeWatch(Collector):
    """Notes when the registry was last scraped; yields no metric itself."""

    def __init__(self) -> None:
        self.last_scrape = 0.0

    def collect(self) -> Iterable[Any]:
        self.last_scrape = time.monotonic()
        return []

    def describe(self) -> Iterable[Any]:
        return []


_SCRAPES = _ScrapeWatch()
REGISTRY.register(_SCRAPES)

QUEUE_DEPTHS_SQL = "select queue_name, queue_length, oldest_msg_age_sec from private.queue_depths()"


class QueueGauges:
    """Refreshes the queue gauges through one small call (``private.queue_depths()``):
    once at start, then every ``interval`` seconds while the endpoint is being scraped."""

    def __init__(self, pool: AsyncConnectionPool[Any], interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self._refreshed = 0.0

    async def refresh(self) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(QUEUE_DEPTHS_SQL)
            rows = await cur.fetchall()
        for name, length, oldest in rows:
            QUEUE_MESSAGES.labels(queue=name).set(length or 0)
            QUEUE_OLDEST_SECONDS.labels(queue=name).set(oldest or 0)
        QUEUE_REFRESHED.set(time.time())
        self._refreshed = time.monotonic()

    async def run(self) -> None:
        first = True
        while True:
            if first or _SCRAPES.last_scrape > self._refreshed:
                try:
                    await self.refresh()
                    first = False
                except Exception as exc:  # noqa: BLE001 - a gauge must never stop the worker
                    log.warning(
                        "could not refresh queue metrics",
                        extra={"fields": {"error": str(exc)[:200]}},
                    )
            await asyncio.sleep(self._interval)


# ---------------------------------------------------------------- HTTP endpoint


def start_metrics_server(port: int, host: str = LOOPBACK) -> MetricsServer | None:
    """Serve :data:`REGISTRY` on ``host:port`` (0 disables); a busy port is logged, not fatal
    (the shared helper of ``common.metrics_server``)."""
    return _start_server(REGISTRY, port, host, service="worker")
