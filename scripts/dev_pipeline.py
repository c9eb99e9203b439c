"""Drive the real pipeline in-process, for development tools and tests alike: onboard a
practice as an MX merchant (the same ``scripts.localdb.create_merchant`` the demo and the
benchmarks use), ingest a notification through the webhook's own procedure, drain the queue
with the worker's consumer. (tests/support/pipeline.py and merchants.py re-export these.)"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from mxstandin.server import StandinHandle
from scripts import localdb
from worker.consumer import Consumer
from worker.settings import WorkerSettings

UNFINISHED_SQL = "select count(*) from app.webhook_events where status in ('queued', 'retrying')"


@dataclass(frozen=True)
class Merchant:
    practice_id: uuid.UUID
    merchant_account_id: uuid.UUID
    mx_merchant_id: int
    consumer_key: str
    consumer_secret: str
    token: str


def create_merchant(
    db_url: str,
    mx_merchant_id: int,
    *,
    slug: str | None = None,
    consumer_key: str | None = None,
    consumer_secret: str | None = None,
    environment: str = "sandbox",
) -> Merchant:
    """A practice with one merchant account, Vault credentials and a webhook token."""
    key = consumer_key or f"key-{mx_merchant_id}"
    secret = consumer_secret or secrets.token_urlsafe(16)
    with psycopg.connect(db_url) as conn:
        practice_id, account_id, token = localdb.create_merchant(
            conn,
            name=f"Practice {mx_merchant_id}",
            slug=slug or f"practice-{mx_merchant_id}",
            mx_merchant_id=mx_merchant_id,
            environment=environment,
            consumer_key=key,
            consumer_secret=secret,
            account_name=f"DBA {mx_merchant_id}",
        )
    return Merchant(practice_id, account_id, mx_merchant_id, key, secret, token)


def onboard(db_url: str, standin: StandinHandle, mx_merchant_id: int) -> Merchant:
    """A merchant known to the stand-in (with API keys) and onboarded in the database."""
    created = standin.state.create_merchant(merchant_id=mx_merchant_id)
    return create_merchant(
        db_url,
        created["merchant_id"],
        consumer_key=created["consumer_key"],
        consumer_secret=created["consumer_secret"],
    )


def ingest(db_url: str, token: str, payload: dict[str, Any]) -> tuple[str, int | None]:
    """Record and queue one notification through the webhook's own procedure."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select outcome, event_id from private.ingest_webhook(%s, %s, %s, null)",
            (token, Jsonb(payload), json.dumps(payload)),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def worker_settings(db_url: str, mx_base_url: str, **overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "mx_base_url": mx_base_url,
        "worker_poll_interval_seconds": 0.05,
        "worker_backoff_base_seconds": 0.5,
        "worker_backoff_max_seconds": 2,
        "mx_total_timeout_seconds": 3,
        "mx_read_timeout_seconds": 2,
        "worker_visibility_seconds": 10,
        "worker_shutdown_grace_seconds": 5,
    }
    values.update(overrides)
    return WorkerSettings(**values)


def unfinished(db_url: str, *, connect_timeout: int | None = None) -> int:
    with psycopg.connect(db_url, connect_timeout=connect_timeout) as conn:
        row = conn.execute(UNFINISHED_SQL).fetchone()
    return int(row[0]) if row else 0


async def drain(
    settings: WorkerSettings,
    *,
    workers: int = 1,
    timeout: float = 60,  # noqa: ASYNC109 - a deadline checked between polls, callers pass it
) -> list[Consumer]:
    """Run ``workers`` consumers until no event is queued or retrying, then stop them."""
    consumers = [Consumer(settings) for _ in range(workers)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            await asyncio.sleep(0.2)
            for task in tasks:
                if task.done():
                    task.result()  # a crashed consumer fails the test here
            if await asyncio.to_thread(unfinished, settings.database_url) == 0:
                break
            if loop.time() > deadline:
                raise TimeoutError(f"events still unfinished after {timeout}s")
    finally:
        for consumer in consumers:
            consumer.request_stop()
        await asyncio.gather(*tasks)
    return consumers
