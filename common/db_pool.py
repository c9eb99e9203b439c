"""The services' one way to build their psycopg connection pool (webhook, dashboard, worker).

Each reads the same settings (``database_url``, ``db_pool_min_size`` / ``db_pool_max_size``,
``db_connect_timeout_seconds``, ``db_prepare_threshold``: ``None`` for the Supabase
transaction pooler); each names itself (``application_name`` in ``pg_stat_activity``) and
says how a connection is checked before use and how long the pool keeps reconnecting.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool


class PoolSettings(Protocol):
    """The settings fields a pool is built from (webhook, dashboard and worker settings)."""

    @property
    def database_url(self) -> str: ...
    @property
    def db_pool_min_size(self) -> int: ...
    @property
    def db_pool_max_size(self) -> int: ...
    @property
    def db_connect_timeout_seconds(self) -> float: ...
    @property
    def db_prepare_threshold(self) -> int | None: ...


def make_pool(
    settings: PoolSettings,
    *,
    name: str,
    check: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]],
    reconnect_timeout: float,
    statement_timeout_ms: int = 0,
    row_factory: Any = None,
) -> AsyncConnectionPool[Any]:
    """A closed pool (the app's lifespan opens it) of autocommit connections: transactions are
    explicit. ``statement_timeout_ms`` > 0 sets the session's statement timeout."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": settings.db_prepare_threshold,
        "connect_timeout": max(1, math.ceil(settings.db_connect_timeout_seconds)),
        "application_name": name,
    }
    if statement_timeout_ms:
        kwargs["options"] = f"-c statement_timeout={statement_timeout_ms}"
    if row_factory is not None:
        kwargs["row_factory"] = row_factory
    return AsyncConnectionPool(
        conninfo=settings.database_url,
        min_size=min(settings.db_pool_min_size, settings.db_pool_max_size),
        max_size=settings.db_pool_max_size,
        kwargs=kwargs,
        open=False,
        timeout=settings.db_connect_timeout_seconds,
        reconnect_timeout=reconnect_timeout,
        check=check,
        name=name,
    )
