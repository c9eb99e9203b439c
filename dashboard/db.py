"""The one data path: a pooled connection as ``mx_dashboard_login`` that, per transaction,
becomes ``authenticated`` with the verified token's claims, exactly as PostgREST does; every
read and write then goes through the ``api`` schema under RLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from common import db_pool
from dashboard.auth import Identity
from dashboard.settings import DashboardSettings

AS_USER_SQL = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"
)

Conn = psycopg.AsyncConnection[dict[str, Any]]


class DatabaseUnavailable(Exception):
    """The database cannot be reached (the page says 503; the pool keeps reconnecting)."""


def make_pool(settings: DashboardSettings) -> AsyncConnectionPool[Any]:
    """The dashboard's pool: rows as dicts, every connection checked before use."""
    return db_pool.make_pool(
        settings,
        name="mx-dashboard",
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=10,
        row_factory=dict_row,
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
