"""Synchronisation with MX Merchant's list APIs: reconcile, backfill, contract sync.

What to queue, how to link a contract and what a membership's status becomes are decided in
SQL (``private.queue_sync_payments``, ``private.apply_contract``); this module pages through
MX, keeps under the per-merchant call rate, and records every run: the run row is committed
as ``running`` before the first MX call and finished in a separate transaction, so a run that
fails is recorded as failed, never as a success (docs/sync.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker import metrics
from worker.event_processor import CredentialsCache, PermanentFailure
from worker.mx.client import MxClient, MxCredentials, MxError
from worker.mx.models import MxContract, MxPayment
from worker.settings import WorkerSettings

log = logging.getLogger("worker.sync")

T = TypeVar("T")


class AlreadyRunning(Exception):
    """A run of the same kind is already running for the merchant (SQLSTATE 55P03)."""


# --------------------------------------------------------------------------------------------
# rate limit
# --------------------------------------------------------------------------------------------


class TokenBucket:
    """``rate_per_minute`` calls a minute, bursts up to ``burst``."""

    def __init__(self, rate_per_minute: int, burst: int | None = None) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(rate_per_minute, 10)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class RateLimiter:
    """One token bucket per merchant id (MX publishes no limit; stay polite anyway)."""

    def __init__(self, rate_per_minute: int) -> None:
        self.rate_per_minute = rate_per_minute
        self._buckets: dict[int, TokenBucket] = {}

    async def acquire(self, merchant_id: int) -> None:
        bucket = self._buckets.get(merchant_id)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_minute)
            self._buckets[merchant_id] = bucket
        await bucket.acquire()


# --------------------------------------------------------------------------------------------
# context, accounts, results
# --------------------------------------------------------------------------------------------


@dataclass
class SyncContext:
    """What a sync needs: the database, the MX client, credentials and the rate limiter."""

    pool: AsyncConnectionPool[Any]
    mx: MxClient
    settings: WorkerSettings
    credentials: CredentialsCache
    limiter: RateLimiter

    @classmethod
    def create(
        cls, pool: AsyncConnectionPool[Any], mx: MxClient, settings: WorkerSettings
    ) -> SyncContext:
        return cls(
            pool=pool,
            mx=mx,
            settings=settings,
            credentials=CredentialsCache(
                pool, settings.worker_credentials_cache_seconds, settings.mx_base_url
            ),
            limiter=RateLimiter(settings.mx_max_calls_per_minute_per_merchant),
        )

    async def call(self, merchant_id: int, call: Callable[[], Awaitable[T]]) -> T:
        """One MX call, after the merchant's token bucket allows it."""
        await self.limiter.acquire(merchant_id)
        return await call()


@dataclass(frozen=True, slots=True)
class Account:
    merchant_account_id: UUID
    mx_merchant_id: int


@dataclass
class RunResult:
    """The outcome of one run, as recorded in ``app.sync_runs``."""

    run_id: int
    kind: str
    mx_merchant_id: int
    status: str = "running"
    pages: int = 0
    found: int = 0
    queued: int = 0
    error: str | None = None
    watermark: datetime | None = None
    cursor: dict[str, Any] = field(default_factory=dict)
    contracts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "mx_merchant_id": self.mx_merchant_id,
            "status": self.status,
            "pages": self.pages,
            "found": self.found,
            "queued": self.queued,
            "contracts": self.contracts,
            "watermark": self.watermark,
            "error": self.error,
        }


async def list_accounts(
    pool: AsyncConnectionPool[Any], mx_merchant_id: int | None
) -> list[Account]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select merchant_account_id, mx_merchant_id from private.sync_accounts(%s)",
            (mx_merchant_id,),
        )
        return [Account(row[0], row[1]) for row in await cur.fetchall()]


async def due_accounts(
    pool: AsyncConnectionPool[Any], kind: str, every: timedelta
) -> list[Account]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select merchant_account_id, mx_merchant_id from private.sync_due_accounts(%s, %s)",
            (kind, every),
        )
        return [Account(row[0], row[1]) for row in await cur.fetchall()]


# --------------------------------------------------------------------------------------------
# run rows (each statement its own transaction: the pool's connections are autocommit)
# --------------------------------------------------------------------------------------------


async def start_run(
    ctx: SyncContext,
    account: Account,
    kind: str,
    *,
    run_by: str,
    since: datetime | None = None,
    cursor: dict[str, Any] | None = None,
    resumed_from: int | None = None,
) -> RunResult:
    try:
        async with ctx.pool.connection() as conn:
            cur = await conn.execute(
                "select private.start_sync_run(%s, %s, %s, %s, %s, %s)",
                (
                    account.merchant_account_id,
                    kind,
                    run_by,
                    since,
                    Jsonb(cursor or {}),
                    resumed_from,
                ),
            )
            row = await cur.fetchone()
    except psycopg.errors.LockNotAvailable as exc:
        raise AlreadyRunning(str(exc).strip()) from exc
    assert row is not None
    return RunResult(
        run_id=row[0], kind=kind, mx_merchant_id=account.mx_merchant_id, cursor=cursor or {}
    )


async def save_progress(ctx: SyncContext, run: RunResult) -> None:
    async with ctx.pool.connection() as conn:
        await conn.execute(
            "select private.record_sync_progress(%s, %s, %s, %s, %s)",
            (run.run_id, run.pages, run.found, run.queued, Jsonb(run.cursor)),
        )


async def call_shielded(pool: AsyncConnectionPool[Any], sql: str, params: tuple[Any, ...]) -> None:
    """One call on a pool connection, its own transaction; shielded so that a cancellation of
    the caller (a stopping worker) cannot skip it."""

    async def call() -> None:
        async with pool.connection() as conn:
            await conn.execute(sql, params)

    await asyncio.shield(call())


async def finish_run(ctx: SyncContext, run: RunResult, error: str | None) -> RunResult:
    """Record the outcome in its own transaction; shielded so a cancellation cannot skip it."""
    run.status = "succeeded" if error is None else "failed"
    run.error = error
    try:
        await call_shielded(
            ctx.pool,
            "select private.finish_sync_run(%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run.run_id,
                error is None,
                error,
                run.pages,
                run.found,
                run.queued,
                Jsonb(run.cursor),
                run.watermark,
            ),
        )
    except psycopg.Error as exc:  # the heartbeat goes stale; the next start records it failed
        log.error(
            "could not record the end of a sync run",
            extra={"fields": {"run_id": run.run_id, "error": str(exc)[:200]}},
        )
    level = logging.INFO if error is None else logging.ERROR
    log.log(level, f"{run.kind} {run.status}", extra={"fields": run.as_dict()})
    return run


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, MxError):
        return f"MX: {exc.message}"
    if isinstance(exc, PermanentFailure):
        return exc.reason
    if isinstance(exc, psycopg.Error):
        return f"database: {exc.sqlstate or 'connection'}: {str(exc).strip()[:500]}"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


async def guarded(
    ctx: SyncContext, run: RunResult, work: Callable[[], Awaitable[None]]
) -> RunResult:
    """Run ``work`` and record its outcome: succeeded, or failed with the error."""
    try:
        await work()
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        await finish_run(ctx, run, describe_failure(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded; the caller gets the result
        return await finish_run(ctx, run, describe_failure(exc))
    return await finish_run(ctx, run, None)


# --------------------------------------------------------------------------------------------
# payments: reconcile and the first phase of a backfill
# --------------------------------------------------------------------------------------------


def _slim(payment: MxPayment) -> dict[str, Any]:
    """The fields ``private.queue_sync_payments`` compares (list records lack invoiceIds)."""
    data = payment.canonical()
    return {k: data[k] for k in ("id", "merchant_id", "status", "refunded_amount", "created")}


async def _queue(ctx: SyncContext, run: RunResult, records: list[MxPayment]) -> None:
    if not records:
        return
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "select found, queued from private.queue_sync_payments(%s, %s)",
            (run.run_id, Jsonb([_slim(r) for r in records])),
        )
        row = await cur.fetchone()
    if row:
        run.found += row[0]
        run.queued += row[1]


async def _credentials(ctx: SyncContext, account: Account) -> MxCredentials:
    creds, _environment = await ctx.credentials.get(account.merchant_account_id)
    return creds


async def payments_page(
    ctx: SyncContext, account: Account, creds: MxCredentials, run: RunResult, since: datetime
) -> bool:
    """One page of ``GET /payment`` (newest first) from ``run.cursor['offset']``: queue what
    is missing, advance the cursor. Returns False once the page reached ``since`` or the end."""
    size = ctx.settings.sync_page_size
    offset = int(run.cursor.get("offset", 0))
    page = await ctx.call(
        account.mx_merchant_id,
        lambda: ctx.mx.list_payments(creds, account.mx_merchant_id, limit=size, offset=offset),
    )
    run.pages += 1
    records = page.records
    if offset == 0 and records:
        created = [r.created for r in records if r.created is not None]
        run.watermark = max(created) if created else None
    in_window = [r for r in records if r.created is None or r.created >= since]
    await _queue(ctx, run, in_window)
    run.cursor = {
        "phase": "payments",
        "offset": offset + len(records),
        "last_seen_id": records[-1].id if records else run.cursor.get("last_seen_id"),
    }
    more = (
        bool(records)
        and len(in_window) == len(records)
        and len(records) >= size
        and offset + len(records) < page.record_count
    )
    return more


async def reconcile(
    ctx: SyncContext,
    account: Account,
    *,
    run_by: str = "operator",
    on_start: Callable[[RunResult], Awaitable[None]] | None = None,
) -> RunResult:
    """Page back from the newest payment to the watermark (minus the overlap) and queue the
    payments the project has not processed. The watermark advances only on success.
    ``on_start`` is called with the run once its row exists (a sync request links to it)."""
    settings = ctx.settings
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "select private.reconcile_watermark(%s)", (account.merchant_account_id,)
        )
        row = await cur.fetchone()
    previous: datetime | None = row[0] if row else None
    if previous is not None:
        since = previous - timedelta(minutes=settings.reconcile_overlap_minutes)
    else:
        since = datetime.now(UTC) - timedelta(hours=settings.reconcile_initial_lookback_hours)
    run = await start_run(ctx, account, "reconcile", run_by=run_by, since=since)

    async def work() -> None:
        if on_start is not None:
            await on_start(run)
        creds = await _credentials(ctx, account)
        while await payments_page(ctx, account, creds, run, since):
            await save_progress(ctx, run)
        # nothing newer than the old watermark seen (empty list): keep it
        if run.watermark is None or (previous is not None and run.watermark < previous):
            run.watermark = previous

    result = await guarded(ctx, run, work)
    metrics.RECONCILE_GAPS.inc(result.queued)  # webhooks MX never delivered, queued now
    return result


# --------------------------------------------------------------------------------------------
# contracts
# --------------------------------------------------------------------------------------------


async def apply_contract(
    ctx: SyncContext, account: Account, creds: MxCredentials, run: RunResult, contract: MxContract
) -> dict[str, Any]:
    """Every payment of the contract (``GET /contract/payment``), then one SQL call."""
    size = ctx.settings.sync_page_size
    fetched_at = datetime.now(UTC)
    payments: list[MxPayment] = []
    offset = 0
    while True:
        page = await ctx.call(
            account.mx_merchant_id,
            functools.partial(
                ctx.mx.list_contract_payments,
                creds,
                account.mx_merchant_id,
                contract.id,
                limit=size,
                offset=offset,
            ),
        )
        payments.extend(page.records)
        offset += len(page.records)
        if not page.records or len(page.records) < size or offset >= page.record_count:
            break
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "select private.apply_contract(%s, %s, %s, %s)",
            (
                run.run_id,
                fetched_at,
                Jsonb(contract.canonical()),
                Jsonb([_slim(p) for p in payments]),
            ),
        )
        row = await cur.fetchone()
    result: dict[str, Any] = dict(row[0]) if row and row[0] else {}
    run.found += int(result.get("payments_found") or 0)
    run.queued += int(result.get("payments_queued") or 0)
    run.contracts += 1
    return result


async def contracts_page(
    ctx: SyncContext, account: Account, creds: MxCredentials, run: RunResult
) -> bool:
    """One page of ``GET /contract`` from ``run.cursor['offset']``, each contract applied."""
    size = ctx.settings.sync_page_size
    offset = int(run.cursor.get("offset", 0)) if run.cursor.get("phase") == "contracts" else 0
    page = await ctx.call(
        account.mx_merchant_id,
        lambda: ctx.mx.list_contracts(creds, account.mx_merchant_id, limit=size, offset=offset),
    )
    run.pages += 1
    for contract in page.records:
        await apply_contract(ctx, account, creds, run, contract)
    run.cursor = {
        "phase": "contracts",
        "offset": offset + len(page.records),
        "last_seen_id": page.records[-1].id if page.records else run.cursor.get("last_seen_id"),
    }
    return (
        bool(page.records)
        and len(page.records) >= size
        and offset + len(page.records) < page.record_count
    )


async def sync_contracts(
    ctx: SyncContext, account: Account, *, run_by: str = "operator"
) -> RunResult:
    """Refresh every contract of the merchant and apply it to the memberships it bills."""
    run = await start_run(ctx, account, "contracts", run_by=run_by, cursor={"phase": "contracts"})

    async def work() -> None:
        creds = await _credentials(ctx, account)
        while await contracts_page(ctx, account, creds, run):
            await save_progress(ctx, run)

    return await guarded(ctx, run, work)


# --------------------------------------------------------------------------------------------
# backfill: payments since a date, then contracts; resumable, one page per step
# --------------------------------------------------------------------------------------------


class Backfill:
    """A backfill driven one page at a time (:meth:`step`), so the command line can show
    progress and an interruption leaves the cursor of the last finished page in the run row."""

    def __init__(self, ctx: SyncContext, account: Account, run: RunResult, since: datetime) -> None:
        self.ctx = ctx
        self.account = account
        self.run = run
        self.since = since
        self._creds: MxCredentials | None = None
        self.done = False

    @classmethod
    async def start(
        cls,
        ctx: SyncContext,
        account: Account,
        since: datetime | None,
        *,
        resume: bool = False,
        run_by: str = "operator",
    ) -> Backfill:
        cursor: dict[str, Any] = {"phase": "payments", "offset": 0}
        resumed_from: int | None = None
        if resume:
            async with ctx.pool.connection() as conn:
                cur = await conn.execute(
                    "select run_id, since, cursor, status from private.resumable_backfill(%s)",
                    (account.merchant_account_id,),
                )
                row = await cur.fetchone()
            if row is None or row[3] == "succeeded":
                raise LookupError("no unfinished backfill to resume for this merchant")
            resumed_from, since, cursor = row[0], row[1], dict(row[2] or {})
            cursor.setdefault("phase", "payments")
        if since is None:
            raise ValueError("a backfill needs --since (or --resume)")
        run = await start_run(
            ctx, account, "backfill", run_by=run_by, since=since, cursor=cursor,
            resumed_from=resumed_from,
        )  # fmt: skip
        return cls(ctx, account, run, since)

    async def step(self) -> bool:
        """One page; True while there is more. A failure finishes the run as failed (its
        cursor stays resumable) and is raised again."""
        run = self.run
        try:
            if self._creds is None:
                self._creds = await _credentials(self.ctx, self.account)
            if run.cursor.get("phase", "payments") == "payments":
                more = await payments_page(self.ctx, self.account, self._creds, run, self.since)
                if not more:
                    run.cursor = {"phase": "contracts", "offset": 0}
                more = True
            else:
                more = await contracts_page(self.ctx, self.account, self._creds, run)
            run.watermark = None  # a backfill keeps no watermark
            if more:
                await save_progress(self.ctx, run)
            else:
                await finish_run(self.ctx, run, None)
                self.done = True
            return more
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            await self.fail(describe_failure(exc))
            raise
        except Exception as exc:
            await self.fail(describe_failure(exc))
            raise

    async def fail(self, error: str) -> None:
        if not self.done:
            self.done = True
            await finish_run(self.ctx, self.run, error)

    async def run_to_end(self) -> RunResult:
        """All steps; returns the recorded result (failed runs included, not raised)."""
        try:
            while await self.step():
                pass
        except Exception as exc:  # noqa: BLE001 - recorded as failed by step()
            log.debug("backfill stopped", extra={"fields": {"error": str(exc)[:200]}})
        return self.run
