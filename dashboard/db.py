"""The one data path: a pooled connection as ``mx_dashboard_login`` that, per transaction,
becomes ``authenticated`` with the verified token's claims, exactly as PostgREST does; every
read and write then goes through the ``api`` schema under RLS."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dashboard.auth import Identity
from dashboard.settings import DashboardSettings

AS_USER_SQL = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"
)

Conn = psycopg.AsyncConnection[dict[str, Any]]


class DatabaseUnavailable(Exception):
    """The database cannot be reached (the page says 503; the pool keeps reconnecting)."""


def make_pool(settings: DashboardSettings) -> AsyncConnectionPool[Any]:
    kwargs: dict[str, Any] = {
        "autocommit": True,  # transactions are explicit (one per request)
        "prepare_threshold": settings.db_prepare_threshold,
        "connect_timeout": max(1, math.ceil(settings.db_connect_timeout_seconds)),
        "application_name": "mx-dashboard",
        "row_factory": dict_row,
    }
    return AsyncConnectionPool(
        conninfo=settings.database_url,
        min_size=min(settings.db_pool_min_size, settings.db_pool_max_size),
        max_size=settings.db_pool_max_size,
        kwargs=kwargs,
        open=False,
        timeout=settings.db_connect_timeout_seconds,
        reconnect_timeout=10,
        check=AsyncConnectionPool.check_connection,
        name="mx-dashboard",
    )


@asynccontextmanager
async def as_user(
    pool: AsyncConnectionPool[Any], identity: Identity, wait_seconds: float
) -> AsyncIterator[Conn]:
    """One transaction as the signed-in user (role authenticated + the token's claims)."""
    try:
        async with pool.connection(timeout=wait_seconds) as conn, conn.transaction():
            await conn.execute(AS_USER_SQL, (json.dumps(identity.claims),))
            yield conn
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            raise
        raise DatabaseUnavailable(str(exc)) from exc
    except psycopg.errors.ConnectionTimeout as exc:  # pragma: no cover - subclass above
        raise DatabaseUnavailable(str(exc)) from exc


async def fetch_all(conn: Conn, query: Any, params: Any = None) -> list[dict[str, Any]]:
    return await (await conn.execute(query, params)).fetchall()


async def fetch_one(conn: Conn, query: Any, params: Any = None) -> dict[str, Any] | None:
    return await (await conn.execute(query, params)).fetchone()
