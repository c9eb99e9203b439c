"""Routes: the live-update stream (server-sent events) of one practice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any, Final

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from dashboard.auth import Identity
from dashboard.db import DatabaseUnavailable, fetch_one
from dashboard.live import RELOAD
from dashboard.reads import (
    read_practice,
)
from dashboard.runtime import Runtime

SSE_PING_SECONDS: Final = 15.0
SSE_RECHECK_SECONDS: Final = 60.0


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the live-update stream (server-sent events) of one practice."""

    @get("/p/{practice_id:uuid}/events")
    async def events(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> ServerSentEvent:
        async with rt.user(identity) as conn:
            await read_practice(conn, practice_id)
        key = str(practice_id)
        queue = rt.hub.subscribe(key)

        async def still_member() -> bool:
            try:
                async with rt.user(identity) as conn:
                    return bool(
                        await fetch_one(
                            conn, "select 1 as ok from api.practices where id = %s", (practice_id,)
                        )
                    )
            except DatabaseUnavailable:
                return True  # the live listener recovers; the page re-reads through api

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            checked = time.monotonic()
            try:
                yield ServerSentEventMessage(event="ready", data="", retry=2000)
                while True:
                    if time.time() >= identity.expires_at:
                        return  # the browser reconnects; the session refreshes the token
                    if time.monotonic() - checked > SSE_RECHECK_SECONDS:
                        if not await still_member():
                            return
                        checked = time.monotonic()
                    try:
                        item = await asyncio.wait_for(queue.get(), SSE_PING_SECONDS)
                    except TimeoutError:
                        yield ServerSentEventMessage(comment="ping")
                        continue
                    if item == RELOAD:
                        yield ServerSentEventMessage(event="reload", data="")
                        continue
                    for membership_id in item:
                        yield ServerSentEventMessage(event=f"m-{membership_id}", data="")
                    yield ServerSentEventMessage(event="changed", data=str(len(item)))
            finally:
                rt.hub.unsubscribe(key, queue)

        return ServerSentEvent(stream(), headers={"cache-control": "no-store"})

    return [events]
