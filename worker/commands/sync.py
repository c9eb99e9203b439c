"""``python -m worker reconcile | backfill | contracts``: synchronisation with MX list APIs.

Each command records its runs in ``app.sync_runs`` (docs/sync.md); exit code 0 when every
run succeeded, 1 when one failed (the error is in the run row and printed), 2 on a usage or
connection problem, 130 when interrupted (a backfill stays resumable with ``--resume``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from common.logs import configure_logging
from worker.commands.common import CommandError, add_json_flag, emit, progress
from worker.consumer import make_mx_client, make_pool
from worker.ops.db import operator_database_url
from worker.settings import WorkerSettings
from worker.sync import (
    Account,
    AlreadyRunning,
    Backfill,
    RunResult,
    SyncContext,
    list_accounts,
    reconcile,
    sync_contracts,
)

COLUMNS = [
    "run_id",
    "kind",
    "mx_merchant_id",
    "status",
    "pages",
    "found",
    "queued",
    "contracts",
    "error",
]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    rec = commands.add_parser(
        "reconcile",
        help="queue payments MX has that the project has not processed",
        description="Page through GET /payment from the newest back to each merchant's "
        "watermark (minus RECONCILE_OVERLAP_MINUTES) and queue the payments missing here or "
        "stored with another status or refunded amount. The watermark advances on success only.",
    )
    _merchant_args(rec)
    add_json_flag(rec)
    rec.set_defaults(handler=cmd_reconcile)

    con = commands.add_parser(
        "contracts",
        help="refresh recurring contracts and apply them to memberships",
        description="Page through GET /contract, link each contract to its patient and the "
        "payments it billed, and apply its status, interval, amount and next billing date to "
        "the memberships it bills (paused and canceled show without waiting for a payment).",
    )
    _merchant_args(con)
    add_json_flag(con)
    con.set_defaults(handler=cmd_contracts)

    back = commands.add_parser(
        "backfill",
        help="queue every payment since a date, then sync contracts (resumable)",
        description="Page through GET /payment back to --since and queue what is missing, "
        "then every contract. The cursor is saved after each page: after a failure or Ctrl-C, "
        "--resume continues the newest unfinished backfill of the merchant.",
    )
    back.add_argument("--mx-merchant-id", type=int, required=True, help="MX merchant id")
    back.add_argument("--since", type=date.fromisoformat, help="first day (YYYY-MM-DD, UTC)")
    back.add_argument(
        "--resume", action="store_true", help="continue the newest unfinished backfill"
    )
    add_json_flag(back)
    back.set_defaults(handler=cmd_backfill)


def _merchant_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--mx-merchant-id", type=int, help="one MX merchant id")
    group.add_argument("--all", action="store_true", help="every active merchant account")


def _settings() -> WorkerSettings:
    url = operator_database_url()
    try:
        return WorkerSettings(database_url=url)
    except ValidationError as exc:
        raise CommandError(f"invalid settings: {exc}") from exc


@contextlib.asynccontextmanager
async def sync_context(settings: WorkerSettings) -> AsyncIterator[SyncContext]:
    pool = make_pool(settings, application_name="mx-worker-sync")
    await pool.open(wait=True, timeout=settings.db_connect_timeout_seconds * 2)
    mx = make_mx_client(settings)
    try:
        async with mx:
            yield SyncContext.create(pool, mx, settings)
    finally:
        await pool.close()


async def _accounts(ctx: SyncContext, args: argparse.Namespace) -> list[Account]:
    accounts = await list_accounts(ctx.pool, None if args.all else args.mx_merchant_id)
    if not accounts and not args.all:
        raise CommandError(f"no active merchant account {args.mx_merchant_id} with API credentials")
    return accounts


async def run_per_merchant(
    settings: WorkerSettings, args: argparse.Namespace, kind: str
) -> list[RunResult]:
    job = reconcile if kind == "reconcile" else sync_contracts
    results: list[RunResult] = []
    async with sync_context(settings) as ctx:
        for account in await _accounts(ctx, args):
            try:
                results.append(await job(ctx, account, run_by="operator"))
            except AlreadyRunning as exc:
                results.append(
                    RunResult(0, kind, account.mx_merchant_id, status="skipped", error=str(exc))
                )
    return results


def _report(args: argparse.Namespace, results: list[RunResult]) -> int:
    emit(args, [r.as_dict() for r in results], COLUMNS)
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = _settings()
    configure_logging(settings.log_level)
    return _report(args, asyncio.run(run_per_merchant(settings, args, "reconcile")))


def cmd_contracts(args: argparse.Namespace) -> int:
    settings = _settings()
    configure_logging(settings.log_level)
    return _report(args, asyncio.run(run_per_merchant(settings, args, "contracts")))


def cmd_backfill(args: argparse.Namespace) -> int:
    if args.since is None and not args.resume:
        raise CommandError("give --since DATE, or --resume")
    settings = _settings()
    configure_logging(settings.log_level)
    since = (
        datetime(args.since.year, args.since.month, args.since.day, tzinfo=UTC)
        if args.since
        else None
    )
    with asyncio.Runner() as runner:
        return backfill_with_runner(runner, settings, args, since)


def backfill_with_runner(
    runner: asyncio.Runner,
    settings: WorkerSettings,
    args: argparse.Namespace,
    since: datetime | None,
) -> int:
    """Drive the backfill one page per ``runner.run`` so the shared progress bar can show it."""
    stack = contextlib.AsyncExitStack()
    ctx = runner.run(stack.enter_async_context(sync_context(settings)))
    try:
        accounts = runner.run(list_accounts(ctx.pool, args.mx_merchant_id))
        if not accounts:
            raise CommandError(
                f"no active merchant account {args.mx_merchant_id} with API credentials"
            )
        try:
            job = runner.run(Backfill.start(ctx, accounts[0], since, resume=args.resume))
        except (LookupError, ValueError, AlreadyRunning) as exc:
            raise CommandError(str(exc)) from exc

        def pages() -> Iterator[int]:
            while True:
                more = runner.run(job.step())
                yield job.run.pages
                if not more:
                    return

        try:
            for _ in progress(pages(), None, f"backfill {args.mx_merchant_id} (pages)"):
                pass
        except KeyboardInterrupt:
            runner.run(job.fail("interrupted"))
            emit(args, job.run.as_dict(), COLUMNS)
            print("interrupted: continue with --resume")
            return 130
        except Exception as exc:  # noqa: BLE001 - recorded as failed by the step; reported below
            print(f"backfill failed: {exc}", file=sys.stderr)
        return _report(args, [job.run])
    finally:
        runner.run(stack.aclose())
