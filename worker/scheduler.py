"""The worker's scheduler: reconcile, contract sync, Team invitations, retention and the
overdue sweep.

Every ``python -m worker run`` starts one; exactly one of them, across any number of
workers, does the work: the one holding a Postgres advisory lock, taken with
``pg_try_advisory_lock`` on a dedicated connection (session-level, so it lives exactly as
long as that connection). The lock is checked before every job; when the connection is lost
the lock is gone with it, and this scheduler stops scheduling until it reacquires it.

What is due is decided from ``app.sync_runs`` (``private.sync_due_accounts``), not from
memory, so a scheduler that takes over from another does not repeat its work. On Supabase,
pg_cron may run the SQL-only jobs instead (sql/ops/schedule_pg_cron.sql, docs/sync.md); the
HTTP jobs (reconcile, contracts) always run here.

Every scheduler (not only the lock holder) also serves the dashboard's "sync now" requests
(``app.sync_requests``): it claims one at a time with ``private.claim_sync_request`` (skip
locked, so two workers never take the same one) and carries it out as a reconcile run linked
to the request. A request whose worker died is claimed again after
``SYNC_REQUEST_RECLAIM_MINUTES``; a worker that stops hands its request back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker.mx.client import MxClient
from worker.ops import invitations
from worker.settings import WorkerSettings
from worker.sync import (
    Account,
    AlreadyRunning,
    RunResult,
    SyncContext,
    call_shielded,
    describe_failure,
    due_accounts,
    reconcile,
    sync_contracts,
)

log = logging.getLogger("worker.scheduler")

# pg_try_advisory_lock key of the scheduler: "mxsched" in ASCII, one value for every worker.
LOCK_KEY = 0x6D78_7363_6865_64


class Scheduler:
    """Runs the scheduled jobs while it holds the scheduler lock."""

    def __init__(
        self,
        settings: WorkerSettings,
        pool: AsyncConnectionPool[Any],
        mx: MxClient,
        stopping: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.stopping = stopping
        self.ctx = SyncContext.create(pool, mx, settings)
        self.holding = False
        self.counts: Counter[str] = Counter()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._last_sql_jobs: float | None = None
        # who claimed a sync request (several workers may share a host, or a process in tests)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    # -- the lock -------------------------------------------------------------------------------

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def check_lock(self) -> bool:
        """Hold (or try to take) the lock; False when this scheduler must not schedule."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.settings.database_url,
                    autocommit=True,
                    connect_timeout=max(1, round(self.settings.db_connect_timeout_seconds)),
                    application_name="mx-worker-scheduler",
                    prepare_threshold=None,
                )
                self.holding = False
            if self.holding:
                # the session still lives, so the lock with it
                await self._conn.execute("select 1")
            else:
                cur = await self._conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,))
                row = await cur.fetchone()
                self.holding = bool(row and row[0])
                if self.holding:
                    self.counts["lock_acquired"] += 1
                    log.info("scheduler lock acquired: this worker runs the scheduled jobs")
        except (psycopg.Error, OSError) as exc:
            if self.holding:
                self.counts["lock_lost"] += 1
                log.error(
                    "scheduler lock lost with its connection; scheduling stops until reacquired",
                    extra={"fields": {"error": str(exc)[:200]}},
                )
            self.holding = False
            await self._close()
        return self.holding

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        settings = self.settings
        requests = asyncio.create_task(self.serve_requests(), name="sync-requests")
        try:
            if await self._sleep(settings.scheduler_initial_delay_seconds):
                return
            while not self.stopping.is_set():
                if await self.check_lock():
                    try:
                        await self.tick()
                    except (psycopg.Error, OSError) as exc:
                        log.error(
                            "scheduler tick failed", extra={"fields": {"error": str(exc)[:200]}}
                        )
                if await self._sleep(settings.scheduler_tick_seconds):
                    return
        finally:
            requests.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await requests
            await self._close()  # closing the session releases the lock
            self.holding = False

    async def tick(self) -> None:
        """Everything due now: per merchant reconcile and contract sync, then the SQL jobs."""
        settings = self.settings
        self.counts["ticks"] += 1
        jobs = (
            ("reconcile", timedelta(minutes=settings.reconcile_interval_minutes), reconcile),
            (
                "contracts",
                timedelta(minutes=settings.contract_sync_interval_minutes),
                sync_contracts,
            ),
        )
        for kind, every, job in jobs:
            for account in await due_accounts(self.pool, kind, every):
                if self.stopping.is_set() or not await self.check_lock():
                    return
                try:
                    result = await job(self.ctx, account, run_by="scheduler")
                except AlreadyRunning:
                    continue
                self.counts[f"{kind}_{result.status}"] += 1
        if await self.check_lock():
            await self.send_invitations()
        now = time.monotonic()
        interval = settings.retention_interval_minutes * 60
        if self._last_sql_jobs is None or now - self._last_sql_jobs >= interval:
            if not await self.check_lock():
                return
            self._last_sql_jobs = now
            await self.prune()
            await self.mark_overdue()

    # -- "sync now" requests from the dashboard (every worker) ----------------------------------

    async def serve_requests(self) -> None:
        """Claim and carry out sync requests until stopping; poll when there is none."""
        while not self.stopping.is_set():
            try:
                while not self.stopping.is_set() and await self.run_request():
                    pass
            except (psycopg.Error, OSError) as exc:
                log.error(
                    "sync request polling failed", extra={"fields": {"error": str(exc)[:200]}}
                )
            if await self._sleep(self.settings.sync_request_poll_seconds):
                return

    async def run_request(self) -> bool:
        """Claim one request and run its reconcile; False when none was waiting."""
        settings = self.settings
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select request_id, merchant_account_id, mx_merchant_id, attempts "
                "from private.claim_sync_request(%s, %s, %s)",
                (
                    self.worker_id,
                    timedelta(minutes=settings.sync_request_reclaim_minutes),
                    settings.sync_request_max_attempts,
                ),
            )
            claimed = await cur.fetchone()
        if claimed is None:
            return False
        request_id = int(claimed[0])
        account = Account(claimed[1], int(claimed[2]))
        fields = {"request_id": request_id, "mx_merchant_id": account.mx_merchant_id}
        log.info("sync request claimed", extra={"fields": {**fields, "attempt": claimed[3]}})

        async def link(run: RunResult) -> None:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "select private.attach_sync_run(%s, %s)", (request_id, run.run_id)
                )

        try:
            result = await reconcile(self.ctx, account, run_by="request", on_start=link)
        except AlreadyRunning:
            # a reconcile of this account is running (scheduler or operator): after it
            await self._release(request_id, settings.sync_request_poll_seconds * 2)
            self.counts["request_deferred"] += 1
            return True
        except asyncio.CancelledError:
            await self._release(request_id, 0)  # stopping: another worker takes it at once
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the request, never lost
            await self._finish_request(request_id, describe_failure(exc))
            return True
        error = None if result.status == "succeeded" else (result.error or result.status)
        await self._finish_request(request_id, error)
        return True

    async def _finish_request(self, request_id: int, error: str | None) -> None:
        await call_shielded(
            self.pool,
            "select private.finish_sync_request(%s, %s, %s)",
            (request_id, error is None, error),
        )
        outcome = "done" if error is None else "failed"
        self.counts[f"request_{outcome}"] += 1
        level = logging.INFO if error is None else logging.ERROR
        log.log(
            level,
            f"sync request {outcome}",
            extra={"fields": {"request_id": request_id, "error": error}},
        )

    async def _release(self, request_id: int, retry_after_seconds: float) -> None:
        with contextlib.suppress(psycopg.Error, OSError):  # else reclaimed after the timeout
            await call_shielded(
                self.pool,
                "select private.release_sync_request(%s, %s)",
                (request_id, timedelta(seconds=retry_after_seconds)),
            )

    async def send_invitations(self) -> int:
        """The invitations owners asked for on the Team page (worker/ops/invitations.py, the
        code of ``member add``); sync psycopg in a thread, as supabase-py is sync too. The
        pool answers first whether one is pending, so an idle tick opens no connection."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select exists (select from private.claim_member_invitation())"
            )
            pending = await cur.fetchone()
        if not (pending and pending[0]):
            return 0
        done = await asyncio.to_thread(invitations.process_pending, self.settings.database_url)
        self.counts["invitations"] += len(done)
        return len(done)

    async def prune(self) -> dict[str, int]:
        """Retention in batches, one transaction per batch, until nothing is left to delete."""
        settings = self.settings
        totals: Counter[str] = Counter()
        while not self.stopping.is_set():
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select webhook_events, ingest_archive, dlq_archive, sync_runs "
                    "from private.prune_retention(%s, %s, %s)",
                    (
                        settings.retention_event_days,
                        settings.retention_archive_days,
                        settings.retention_batch_size,
                    ),
                )
                row = await cur.fetchone()
            if row is None or not any(row):
                break
            totals.update(
                {
                    "webhook_events": row[0],
                    "ingest_archive": row[1],
                    "dlq_archive": row[2],
                    "sync_runs": row[3],
                }
            )
        while not self.stopping.is_set():  # finished "sync now" requests, the same way
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select private.prune_sync_requests(%s, %s)",
                    (settings.retention_event_days, settings.retention_batch_size),
                )
                row = await cur.fetchone()
            if row is None or not row[0]:
                break
            totals["sync_requests"] += row[0]
        if totals:
            log.info("retention pruned", extra={"fields": dict(totals)})
        return dict(totals)

    async def mark_overdue(self) -> int | None:
        """The membership sweep (overdue, lapse), one practice at a time.

        ``private.sweep_memberships`` runs each practice in its own subtransaction and returns
        one row per practice; a practice whose data made it fail is logged here (and counted),
        the others are done. Falls back to ``private.mark_overdue_memberships`` on a schema
        without the per-practice sweep. Returns how many memberships became past due."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select to_regprocedure(%s) is not null, to_regprocedure(%s) is not null",
                (
                    "private.sweep_memberships(timestamptz)",
                    "private.mark_overdue_memberships(timestamptz)",
                ),
            )
            found = await cur.fetchone()
            if not found or not (found[0] or found[1]):
                return None
            if not found[0]:
                cur = await conn.execute("select private.mark_overdue_memberships()")
                row = await cur.fetchone()
                return int(row[0]) if row and row[0] is not None else 0
            cur = await conn.execute(
                "select practice_id, practice_slug, marked_past_due, lapsed, error "
                "from private.sweep_memberships()"
            )
            rows = await cur.fetchall()
        past_due = sum(int(r[2]) for r in rows)
        lapsed = sum(int(r[3]) for r in rows)
        failed = [r for r in rows if r[4] is not None]
        for practice_id, slug, _, _, error in failed:
            self.counts["sweep_practice_failed"] += 1
            log.error(
                "membership sweep failed for one practice; the others were swept",
                extra={
                    "fields": {"practice_id": str(practice_id), "practice": slug, "error": error}
                },
            )
        if past_due or lapsed or failed:
            log.info(
                "membership sweep",
                extra={
                    "fields": {
                        "practices": len(rows),
                        "past_due": past_due,
                        "lapsed": lapsed,
                        "failed_practices": len(failed),
                    }
                },
            )
        return past_due

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        return self.stopping.is_set()
