"""Processing one queued event: fetch the truth from MX, hand it to Postgres in one call.

Every decision about what the data means lives in the SQL procedures
(``private.apply_payment_event`` and friends); this module only speaks HTTP to MX and
decides, from the kind of failure, whether to retry later or dead-letter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker import metrics
from worker.mx.client import (
    MxClient,
    MxCredentials,
    MxPermanentError,
    MxTransientError,
    base_url_for,
)
from worker.settings import WorkerSettings

log = logging.getLogger("worker.event_processor")

T = TypeVar("T")

QUEUE_READ_SQL = "select * from private.claim_ingest_events(%s, %s)"


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    msg_id: int
    event_id: int
    attempts: int
    event_type: str
    payment_id: int | None
    merchant_account_id: UUID
    mx_merchant_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one event, for logs and for the caller's counters."""

    status: str  # processed | retrying | dead | released
    detail: str = ""


class PermanentFailure(Exception):
    """A failure that no retry will fix; ``credentials`` flags the merchant account."""

    def __init__(self, reason: str, *, credentials: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.credentials = credentials


class TransientFailure(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# SQLSTATE classes worth retrying: connection trouble, rollbacks (deadlock, serialization),
# operator intervention (shutdown), insufficient resources.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def is_transient_db_error(exc: psycopg.Error) -> bool:
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return True  # the connection itself failed
    return bool(exc.sqlstate and exc.sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES)


def backoff_seconds(attempts: int, settings: WorkerSettings, retry_after: float | None) -> int:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After."""
    ceiling = min(
        settings.worker_backoff_max_seconds,
        settings.worker_backoff_base_seconds * 2 ** max(attempts - 1, 0),
    )
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(1, round(delay))


class CredentialsCache:
    """Merchant API keys read from Vault through ``private.merchant_credentials``."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], ttl_seconds: float, mx_base_url: str | None
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._mx_base_url = mx_base_url
        self._entries: dict[UUID, tuple[float, MxCredentials, str]] = {}

    async def get(self, merchant_account_id: UUID) -> tuple[MxCredentials, str]:
        cached = self._entries.get(merchant_account_id)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select environment, consumer_key, consumer_secret "
                "from private.merchant_credentials(%s)",
                (merchant_account_id,),
            )
            row = await cur.fetchone()
        if row is None or not row[1] or not row[2]:
            raise PermanentFailure("merchant account has no API credentials", credentials=True)
        # sandbox and production merchants can share one worker: each call goes to the
        # API of its merchant's environment (MX_BASE_URL overrides both)
        creds = MxCredentials(
            consumer_key=row[1],
            consumer_secret=row[2],
            base_url=base_url_for(row[0], self._mx_base_url),
        )
        self._entries[merchant_account_id] = (time.monotonic() + self._ttl, creds, row[0])
        return creds, row[0]

    def forget(self, merchant_account_id: UUID) -> None:
        self._entries.pop(merchant_account_id, None)


@dataclass(frozen=True, slots=True)
class FetchedPayment:
    fetched_at: datetime
    payment: dict[str, Any]
    invoices: list[dict[str, Any]]
    related_payments: list[dict[str, Any]]


async def _unless_mx_lacks_it(call: Awaitable[T], what: str, event: ClaimedEvent) -> T | None:
    """``None`` when MX answers 404 for a record the payment only refers to (an invoice, a
    refund's original sale): the reference is kept as data and linked when the record
    arrives, and the rest of the event is applied. Any other failure propagates."""
    try:
        return await call
    except MxPermanentError as exc:
        if exc.kind != "not_found":
            raise
        log.warning(
            "MX does not serve a record the payment refers to; reference kept",
            extra={
                "fields": {
                    "event_id": event.event_id,
                    "payment_id": event.payment_id,
                    "missing": what,
                }
            },
        )
        return None


async def fetch_payment(mx: MxClient, creds: MxCredentials, event: ClaimedEvent) -> FetchedPayment:
    """GET the payment, every invoice it names, and the sale a refund returns.

    Only the payment itself must exist: an invoice or an original sale MX answers 404 for
    (a sale from before the practice was onboarded, an invoice MX no longer serves) is left
    out, its id still carried by the payment."""
    if event.payment_id is None:
        raise PermanentFailure(f"{event.event_type} event without a payment id")
    merchant = event.mx_merchant_id
    # Taken before asking: what MX answers is at least as new as this instant.
    fetched_at = datetime.now(UTC)
    try:
        payment = await mx.get_payment(creds, merchant, event.payment_id)
        invoice_calls = [
            _unless_mx_lacks_it(mx.get_invoice(creds, merchant, i), f"invoice {i}", event)
            for i in payment.invoice_ids
        ]
        related_calls = (
            [
                _unless_mx_lacks_it(
                    mx.get_payment(creds, merchant, payment.original_id),
                    f"original payment {payment.original_id}",
                    event,
                )
            ]
            if payment.original_id
            else []
        )
        invoices = await asyncio.gather(*invoice_calls)
        related = await asyncio.gather(*related_calls)
    except MxTransientError as exc:
        raise TransientFailure(f"MX: {exc.message}", exc.retry_after) from exc
    except MxPermanentError as exc:
        credentials = exc.kind in ("invalid_credentials", "unauthorized")
        raise PermanentFailure(f"MX {exc.kind}: {exc.message}", credentials=credentials) from exc
    return FetchedPayment(
        fetched_at=fetched_at,
        payment=payment.canonical(),
        invoices=[i.canonical() for i in invoices if i is not None],
        related_payments=[r.canonical() for r in related if r is not None],
    )


class EventProcessor:
    """Takes one claimed event to processed, retrying or dead."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        mx: MxClient,
        settings: WorkerSettings,
        credentials: CredentialsCache,
    ) -> None:
        self._pool = pool
        self._mx = mx
        self._settings = settings
        self._credentials = credentials

    async def claim(self, quantity: int) -> list[ClaimedEvent]:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(QUEUE_READ_SQL, (quantity, self._settings.worker_visibility_seconds))
            return [ClaimedEvent(**row) for row in await cur.fetchall()]

    async def process(self, event: ClaimedEvent) -> Outcome:
        lease = asyncio.create_task(self._keep_hidden(event))
        started = time.monotonic()
        try:
            outcome = await self._process(event)
        finally:
            lease.cancel()
        metrics.observe_event(event.event_type, outcome.status, time.monotonic() - started)
        return outcome

    async def _process(self, event: ClaimedEvent) -> Outcome:
        try:
            creds, _environment = await self._credentials.get(event.merchant_account_id)
            fetched = await fetch_payment(self._mx, creds, event)
            result = await self._apply(event, fetched)
            return Outcome("processed", str(result.get("outcome", "")))
        except TransientFailure as exc:
            return await self._retry_or_give_up(event, exc.reason, exc.retry_after)
        except PermanentFailure as exc:
            if exc.credentials:
                self._credentials.forget(event.merchant_account_id)
            await self._dead_letter(event, exc.reason, credentials=exc.credentials)
            return Outcome("dead", exc.reason)
        except psycopg.Error as exc:
            reason = f"database: {exc.sqlstate or 'connection'}: {str(exc).strip()[:500]}"
            if is_transient_db_error(exc):
                return await self._retry_or_give_up(event, reason, None)
            await self._dead_letter(event, reason, credentials=False)
            return Outcome("dead", reason)

    async def _apply(self, event: ClaimedEvent, fetched: FetchedPayment) -> dict[str, Any]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select private.apply_payment_event(%s, %s, %s, %s, %s, %s)",
                (
                    event.msg_id,
                    event.event_id,
                    fetched.fetched_at,
                    Jsonb(fetched.payment),
                    Jsonb(fetched.invoices),
                    Jsonb(fetched.related_payments),
                ),
            )
            row = await cur.fetchone()
        return dict(row[0]) if row and row[0] else {}

    async def _retry_or_give_up(
        self, event: ClaimedEvent, reason: str, retry_after: float | None
    ) -> Outcome:
        if event.attempts >= self._settings.worker_max_attempts:
            final = f"attempts exhausted ({event.attempts}): {reason}"
            await self._dead_letter(event, final, credentials=False)
            return Outcome("dead", final)
        delay = backoff_seconds(event.attempts, self._settings, retry_after)
        async with self._pool.connection() as conn:
            await conn.execute(
                "select private.retry_ingest_event(%s, %s, %s, %s)",
                (event.msg_id, event.event_id, reason, delay),
            )
        return Outcome("retrying", f"{reason}; again in {delay}s")

    async def _dead_letter(self, event: ClaimedEvent, reason: str, *, credentials: bool) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "select private.dead_letter_ingest_event(%s, %s, %s, %s)",
                (event.msg_id, event.event_id, reason, credentials),
            )

    async def release(self, event: ClaimedEvent) -> None:
        """Give an unfinished event back to the queue now (used on shutdown)."""
        async with self._pool.connection() as conn:
            await conn.execute("select private.extend_ingest_visibility(%s, %s)", (event.msg_id, 0))

    async def _keep_hidden(self, event: ClaimedEvent) -> None:
        """Extend the message's visibility while a long job is still running."""
        period = self._settings.worker_visibility_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(
                        "select private.extend_ingest_visibility(%s, %s)",
                        (event.msg_id, self._settings.worker_visibility_seconds),
                    )
            except psycopg.Error as exc:
                log.warning(
                    "could not extend visibility",
                    extra={"fields": {"event_id": event.event_id, "error": str(exc)[:200]}},
                )
