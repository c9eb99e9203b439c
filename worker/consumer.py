"""The queue consumer: bounded concurrency, graceful shutdown, survives Postgres restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from common import db_pool
from worker import metrics
from worker.alerts import observability_tasks, stop_tasks
from worker.event_processor import ClaimedEvent, CredentialsCache, EventProcessor
from worker.mx.client import MxClient, base_url_for
from worker.scheduler import Scheduler
from worker.settings import WorkerSettings

log = logging.getLogger("worker.consumer")

# how long the pool keeps reconnecting before it gives up (psycopg_pool's default)
RECONNECT_TIMEOUT_SECONDS = 300.0


def make_pool(settings: WorkerSettings, *, application_name: str) -> AsyncConnectionPool[Any]:
    """The worker's pool (common/db_pool.py, as the webhook's and the dashboard's): a
    connection broken by a Postgres restart is found and replaced before use."""
    return db_pool.make_pool(
        settings,
        name=application_name,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


def make_mx_client(settings: WorkerSettings) -> MxClient:
    """The worker's MX client (not yet open). Its base URL is only a fallback: each merchant's
    credentials carry the API of its environment (CredentialsCache), so sandbox and production
    merchants mix freely."""
    return MxClient(
        base_url_for("production", settings.mx_base_url),
        connect_timeout=settings.mx_connect_timeout_seconds,
        read_timeout=settings.mx_read_timeout_seconds,
        total_timeout=settings.mx_total_timeout_seconds,
        per_merchant_concurrency=settings.mx_per_merchant_concurrency,
    )


class Consumer:
    """Reads the ingest queue and processes events, at most ``worker_concurrency`` at once."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.counts: Counter[str] = Counter()
        self.scheduler: Scheduler | None = None

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stop requested: no more reads, finishing in-flight events")
            self.stopping.set()

    async def run(self) -> None:
        settings = self.settings
        pool = make_pool(settings, application_name="mx-worker")
        await pool.open(wait=False)
        scheduling: asyncio.Task[None] | None = None
        mx = make_mx_client(settings)
        side_tasks = observability_tasks(pool, settings)  # queue gauges, alert checks
        try:
            async with mx:
                processor = EventProcessor(
                    pool,
                    mx,
                    settings,
                    CredentialsCache(
                        pool, settings.worker_credentials_cache_seconds, settings.mx_base_url
                    ),
                )
                # the scheduled jobs (docs/sync.md): one scheduler per worker, one of them
                # active at a time (advisory lock)
                if settings.scheduler_enabled:
                    self.scheduler = Scheduler(settings, pool, mx, self.stopping)
                    scheduling = asyncio.create_task(self.scheduler.run())
                try:
                    await self._loop(processor)
                finally:
                    if scheduling is not None:
                        scheduling.cancel()  # a run it interrupts is recorded as failed
                        with contextlib.suppress(asyncio.CancelledError):
                            await scheduling
        finally:
            await stop_tasks(side_tasks)
            await pool.close()
            log.info("worker stopped", extra={"fields": dict(self.counts)})

    async def _loop(self, processor: EventProcessor) -> None:
        settings = self.settings
        in_flight: dict[asyncio.Task[None], ClaimedEvent] = {}
        db_down_since: float | None = None
        while not self.stopping.is_set():
            free = settings.worker_concurrency - len(in_flight)
            if free <= 0:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                batch = await processor.claim(min(free, settings.worker_batch_size))
            except (psycopg.OperationalError, PoolTimeout) as exc:
                loop_time = asyncio.get_running_loop().time()
                if db_down_since is None:
                    db_down_since = loop_time
                    log.error(
                        "database unreachable, retrying",
                        extra={"fields": {"error": str(exc)[:200]}},
                    )
                await self._sleep(min(5.0, 0.5 + (loop_time - db_down_since) / 4))
                continue
            if db_down_since is not None:
                log.info("database reachable again")
                db_down_since = None
            if not batch:
                await self._sleep(settings.worker_poll_interval_seconds)
                continue
            for event in batch:
                task = asyncio.create_task(self._run_one(processor, event))
                in_flight[task] = event
                task.add_done_callback(in_flight.pop)
        await self._drain(processor, in_flight)

    async def _run_one(self, processor: EventProcessor, event: ClaimedEvent) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outcome = await processor.process(event)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # Could not even record the failure: the message reappears after its visibility
            # timeout and is tried again then.
            self.counts["unrecorded"] += 1
            metrics.observe_event(event.event_type, "unrecorded", loop.time() - started)
            log.error(
                "event left for redelivery",
                extra={"fields": {"event_id": event.event_id, "error": str(exc)[:200]}},
            )
            return
        self.counts[outcome.status] += 1
        level = logging.INFO if outcome.status == "processed" else logging.WARNING
        log.log(
            level,
            "event " + outcome.status,
            extra={
                "fields": {
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "mx_merchant_id": event.mx_merchant_id,
                    "payment_id": event.payment_id,
                    "attempt": event.attempts,
                    "detail": outcome.detail,
                    "duration_ms": round((loop.time() - started) * 1000, 1),
                }
            },
        )

    async def _drain(
        self, processor: EventProcessor, in_flight: dict[asyncio.Task[None], ClaimedEvent]
    ) -> None:
        """Finish what is in flight within the grace period; give the rest back to the queue."""
        if not in_flight:
            return
        _done, pending = await asyncio.wait(
            list(in_flight), timeout=self.settings.worker_shutdown_grace_seconds
        )
        for task in pending:
            event = in_flight.get(task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if event is not None:
                with contextlib.suppress(psycopg.Error, PoolTimeout):
                    await processor.release(event)
                self.counts["released"] += 1
                metrics.EVENTS.labels(outcome="released", event_type=event.event_type).inc()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


async def run_worker(settings: WorkerSettings) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    consumer = Consumer(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.request_stop)
    server = metrics.start_metrics_server(
        settings.worker_metrics_port, settings.worker_metrics_host
    )
    try:
        await consumer.run()
    finally:
        if server is not None:
            server.close()
