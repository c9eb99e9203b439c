"""Live updates: one LISTEN connection for the whole process, fanned out per practice.

The trigger on app.memberships sends ``{"p": practice, "m": [ids] | null}`` on channel
``membership_changes`` (ids only). Each open memberships page holds a server-sent-event
stream subscribed to its practice (after RLS showed the user that practice); the browser
re-reads the changed rows through ``api``. The listener reconnects with backoff after a
database restart and then tells every subscriber to re-read (changes may have been missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

import psycopg

log = logging.getLogger("dashboard.live")
CHANNEL = "membership_changes"
RELOAD = "reload"


class LiveHub:
    def __init__(self, conninfo: str, check_seconds: float = 5.0) -> None:
        self._conninfo = conninfo
        self._check_seconds = check_seconds
        self._subscribers: defaultdict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        self.connected = asyncio.Event()

    def subscribe(self, practice_id: str) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        self._subscribers[practice_id].add(queue)
        return queue

    def unsubscribe(self, practice_id: str, queue: asyncio.Queue[Any]) -> None:
        queues = self._subscribers.get(practice_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[practice_id]

    @staticmethod
    def _put(queue: asyncio.Queue[Any], item: Any) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:  # a stalled browser: tell it to re-read everything
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    queue.get_nowait()
            queue.put_nowait(RELOAD)

    def dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            practice = str(message["p"])
            ids = message.get("m")
        except (ValueError, KeyError, TypeError):
            log.warning("malformed notification ignored")
            return
        item: Any = RELOAD if ids is None else [str(i) for i in ids]
        for queue in list(self._subscribers.get(practice, ())):
            self._put(queue, item)

    def _reload_all(self) -> None:
        for queues in list(self._subscribers.values()):
            for queue in list(queues):
                self._put(queue, RELOAD)

    async def run(self) -> None:
        """Listen until cancelled; reconnect with backoff (0.2 s doubling to 5 s)."""
        delay = 0.2
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=3,
                    application_name="mx-dashboard-live",
                ) as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    self.connected.set()
                    if not first:
                        self._reload_all()
                    first = False
                    delay = 0.2
                    log.info("listening for membership changes")
                    while True:
                        async for notify in conn.notifies(timeout=self._check_seconds):
                            self.dispatch(notify.payload)
                        await conn.execute("select 1")  # a dead connection raises here
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                log.warning(
                    "live listener lost the database; reconnecting",
                    extra={"fields": {"error_type": type(exc).__name__}},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
