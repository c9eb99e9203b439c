"""The scheduler inside `worker run`: exactly one of several workers runs the scheduled jobs,
it gives the lock up with its connection and takes it back; retention prunes in batches
(old sync runs too, never the one holding the reconcile watermark)."""

from __future__ import annotations

import asyncio

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import query, worker_settings
from worker.consumer import Consumer, make_pool
from worker.mx.client import MxClient
from worker.scheduler import Scheduler

STANDIN_SEED = 14


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000020004)


async def wait_for(predicate: object, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


async def test_exactly_one_of_three_workers_schedules_and_it_survives_a_lost_lock(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    standin.state.create_sale(merchant.mx_merchant_id, contract={"interval": "Monthly"})
    settings = worker_settings(
        db_url,
        standin.base_url,
        scheduler_initial_delay_seconds=0,
        scheduler_tick_seconds=0.2,
    )
    consumers = [Consumer(settings) for _ in range(3)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await wait_for(
            lambda: (
                query(db_url, "select count(*) from app.sync_runs where status <> 'running'")[0][0]
                >= 2
            )
        )
        await asyncio.sleep(1.5)  # several more ticks of every scheduler
        schedulers = [c.scheduler for c in consumers]
        assert all(s is not None for s in schedulers)
        leaders = [s for s in schedulers if s is not None and s.counts["ticks"] > 0]
        assert len(leaders) == 1
        assert leaders[0].holding
        runs = query(db_url, "select kind, status, run_by from app.sync_runs order by id")
        assert runs == [
            ("reconcile", "succeeded", "scheduler"),
            ("contracts", "succeeded", "scheduler"),
        ]

        # the leader's lock connection dies: it notices, and one scheduler holds the lock again
        query(
            db_url,
            "select pg_terminate_backend(l.pid) from pg_locks as l "
            "where l.locktype = 'advisory' and l.granted and l.database = "
            "(select oid from pg_database where datname = current_database())",
        )
        await wait_for(lambda: leaders[0].counts["lock_lost"] == 1)
        await wait_for(lambda: sum(1 for s in schedulers if s is not None and s.holding) == 1)
    finally:
        for consumer in consumers:
            consumer.request_stop()
        await asyncio.gather(*tasks)
    assert not any(s.holding for s in schedulers if s is not None)
    # no job ran twice: what was due once was done once
    assert query(db_url, "select count(*) from app.sync_runs") == [(2,)]


async def test_retention_prunes_in_batches(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    query(
        db_url,
        "insert into app.webhook_events (practice_id, merchant_account_id, status, received_at) "
        "select %s, %s, s, now() - interval '40 days' "
        "from unnest(array['processed', 'ignored', 'rejected', 'processed', 'processed', "
        "'processed', 'processed', 'dead', 'queued']) as s returning id",
        (merchant.practice_id, merchant.merchant_account_id),
    )
    # six old succeeded reconciles (the watermark is the newest one's), one recent failure
    query(
        db_url,
        "insert into app.sync_runs (practice_id, merchant_account_id, kind, status, "
        "started_at, finished_at, watermark) "
        "select %s, %s, 'reconcile', 'succeeded', now() - make_interval(days => 40 + i), "
        "now() - make_interval(days => 40 + i), now() - make_interval(days => 41 + i) "
        "from generate_series(0, 5) as i "
        "union all select %s, %s, 'reconcile', 'failed', now() - interval '1 day', now(), null "
        "returning id",
        (merchant.practice_id, merchant.merchant_account_id) * 2,
    )
    [(watermark,)] = query(
        db_url, "select private.reconcile_watermark(%s)", (merchant.merchant_account_id,)
    )
    settings = worker_settings(
        db_url, standin.base_url, retention_batch_size=3, scheduler_enabled=False
    )
    pool = make_pool(settings, application_name="test")
    await pool.open()
    try:
        async with MxClient(standin.base_url) as mx:
            scheduler = Scheduler(settings, pool, mx, asyncio.Event())
            totals = await scheduler.prune()
    finally:
        await pool.close()
    assert totals["webhook_events"] == 8  # dead events are pruned too (issue 12, item 5)
    assert query(db_url, "select status from app.webhook_events order by status") == [
        ("queued",),
    ]
    # the newest succeeded reconcile (the watermark) and the recent failure stay
    assert totals["sync_runs"] == 5
    assert query(
        db_url,
        "select status, watermark from app.sync_runs where merchant_account_id = %s "
        "order by started_at",
        (merchant.merchant_account_id,),
    ) == [("succeeded", watermark), ("failed", None)]
    assert query(
        db_url, "select private.reconcile_watermark(%s)", (merchant.merchant_account_id,)
    ) == [(watermark,)]
