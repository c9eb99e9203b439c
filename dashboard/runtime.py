"""What every handler shares: settings, the pool, token checks, the live hub, the limiters."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dashboard.auth import (
    AuthProvider,
    FailureLimiter,
    Identity,
    RefreshCoalescer,
    TokenVerifier,
)
from dashboard.db import Conn, as_user
from dashboard.live import LiveHub
from dashboard.settings import DashboardSettings


@dataclasses.dataclass
class Runtime:
    settings: DashboardSettings
    verifier: TokenVerifier
    hub: LiveHub
    limit_email: FailureLimiter
    limit_address: FailureLimiter
    coalescer: RefreshCoalescer
    pool: AsyncConnectionPool[Any]
    provider: AuthProvider

    @asynccontextmanager
    async def user(self, identity: Identity) -> AsyncIterator[Conn]:
        async with as_user(self.pool, identity, self.settings.db_connect_timeout_seconds) as conn:
            yield conn
