"""Helpers for tests that drive the pipeline: ingest like the webhook, drain like the worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scripts import localdb
from worker.consumer import Consumer
from worker.settings import WorkerSettings

UNFINISHED_SQL = "select count(*) from app.webhook_events where status in ('queued', 'retrying')"


def ingest(db_url: str, token: str, payload: dict[str, Any]) -> tuple[str, int | None]:
    """Record and queue one notification through the webhook's own procedure."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select outcome, event_id from private.ingest_webhook(%s, %s, %s, null)",
            (token, Jsonb(payload), json.dumps(payload)),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def ingest_many(db_url: str, token: str, payloads: Iterable[dict[str, Any]]) -> Counter[str]:
    """Record and queue notifications through the webhook's procedure, on one connection;
    returns how many got each outcome."""
    outcomes: Counter[str] = Counter()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for payload in payloads:
            row = conn.execute(
                "select outcome from private.ingest_webhook(%s, %s, null, null)",
                (token, Jsonb(payload)),
            ).fetchone()
            assert row is not None
            outcomes[row[0]] += 1
    return outcomes


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
    settings: WorkerSettings, *, workers: int = 1, timeout: float = 60
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


def query(
    db_url: str,
    sql: str,
    params: tuple[Any, ...] = (),
    *,
    connect_timeout: int | None = None,
) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, connect_timeout=connect_timeout) as conn:
        return conn.execute(sql, params).fetchall()


def as_member(
    db_url: str,
    practice_id: uuid.UUID,
    sql: str,
    params: tuple[Any, ...],
    role: str = "staff",
) -> list[Any]:
    """Run ``sql`` as a new member of the practice (``role``: staff, admin, owner): role and
    JWT claims as PostgREST sets them."""
    user_id = uuid.uuid4()
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@x.test")
        )
        conn.execute(
            "insert into app.practice_members (practice_id, user_id, role) values (%s, %s, %s)",
            (practice_id, user_id, role),
        )
        conn.commit()
        with conn.transaction():
            localdb.act_as_user(conn, user_id)
            return conn.execute(sql, params).fetchall()
