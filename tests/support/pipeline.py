"""Helpers for tests that drive the pipeline: ingest like the webhook, drain like the worker
(the ones development tools use too live in ``scripts.dev_pipeline``)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scripts import localdb
from scripts.dev_pipeline import UNFINISHED_SQL, drain, ingest, unfinished, worker_settings

__all__ = [
    "UNFINISHED_SQL",
    "as_member",
    "drain",
    "ingest",
    "ingest_many",
    "query",
    "unfinished",
    "worker_settings",
]


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
