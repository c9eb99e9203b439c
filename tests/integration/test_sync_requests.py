""" "Sync now" requests carried out by the worker's scheduler against the MX stand-in: a real
reconcile picks the request up and finishes it (once, with several workers); a failure at MX
is recorded on the request with its reason; a request whose worker died is claimed again; a
worker that stops hands its request back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import as_member, query, worker_settings
from worker.consumer import Consumer, make_pool
from worker.mx.client import MxClient
from worker.scheduler import Scheduler

STANDIN_SEED = 23
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000020230)


def ask_as_owner(db_url: str, practice_id: uuid.UUID) -> list[Any]:
    """``api.request_sync`` as an owner of the practice, exactly as the dashboard calls it."""
    return as_member(
        db_url,
        practice_id,
        "select request_id, mx_merchant_id, created from api.request_sync(%s)",
        (practice_id,),
        role="owner",
    )


async def wait_for(predicate: Any, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(predicate):
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


def request_row(db_url: str, request_id: int) -> tuple[Any, ...]:
    [row] = query(
        db_url,
        "select status, error, sync_run_id, attempts, finished_at is not null "
        "from app.sync_requests where id = %s",
        (request_id,),
    )
    return row


async def test_the_scheduler_carries_out_a_request_once_with_several_workers(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    # three payments MX has that no webhook delivered
    sales = [standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT]) for _ in range(3)]
    [(request_id, mx_merchant_id, created)] = ask_as_owner(db_url, merchant.practice_id)
    assert (mx_merchant_id, created) == (merchant.mx_merchant_id, True)
    settings = worker_settings(
        db_url,
        standin.base_url,
        scheduler_initial_delay_seconds=60,  # the periodic jobs stay out of the way
        sync_request_poll_seconds=0.1,
    )
    consumers = [Consumer(settings) for _ in range(3)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await wait_for(lambda: request_row(db_url, request_id)[0] in ("done", "failed"))
    finally:
        for consumer in consumers:
            consumer.request_stop()
        await asyncio.gather(*tasks)
    status, error, run_id, attempts, finished = request_row(db_url, request_id)
    assert (status, error, attempts, finished) == ("done", None, 1, True)
    [run] = query(
        db_url,
        "select id, kind, run_by, status, found, queued from app.sync_runs",
    )
    assert run == (run_id, "reconcile", "request", "succeeded", 3, 3)
    # the missed payments were queued for the worker, as a scheduled reconcile queues them
    queued = query(
        db_url,
        "select payment_id from app.webhook_events where origin = 'reconcile' order by payment_id",
    )
    assert [r[0] for r in queued] == sorted(s["payment"]["id"] for s in sales)
    done = [c.scheduler.counts["request_done"] for c in consumers if c.scheduler is not None]
    assert sorted(done) == [0, 0, 1]  # claimed by exactly one worker
    # once finished, the owner may ask again
    assert ask_as_owner(db_url, merchant.practice_id)[0][2] is True


async def test_a_failure_at_mx_is_recorded_as_failed_with_its_reason(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    standin.state.add_fault(
        {"path_prefix": "/checkout/v3/payment", "kind": "status", "status": 503}
    )
    [(request_id, _, _)] = ask_as_owner(db_url, merchant.practice_id)
    settings = worker_settings(
        db_url,
        standin.base_url,
        scheduler_initial_delay_seconds=60,
        sync_request_poll_seconds=0.1,
        scheduler_enabled=True,
    )
    consumer = Consumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: request_row(db_url, request_id)[0] in ("done", "failed"))
    finally:
        consumer.request_stop()
        await task
    status, error, run_id, _, finished = request_row(db_url, request_id)
    assert (status, finished) == ("failed", True)
    assert error.startswith("MX:")
    assert "503" in error
    [(run_status, run_error)] = query(
        db_url, "select status, error from app.sync_runs where id = %s", (run_id,)
    )
    assert (run_status, run_error) == ("failed", error)


async def test_a_request_whose_worker_died_is_claimed_again_and_a_stopping_worker_hands_back(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    [(request_id, _, _)] = ask_as_owner(db_url, merchant.practice_id)
    # a worker claimed it and died (kill -9) before starting its run
    query(
        db_url,
        "update app.sync_requests set status = 'running', claimed_by = 'dead', attempts = 1, "
        "claimed_at = now() - interval '1 hour' where id = %s returning id",
        (request_id,),
    )
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    pool = make_pool(settings, application_name="test")
    await pool.open()
    try:
        async with MxClient(standin.base_url) as mx:
            scheduler = Scheduler(settings, pool, mx, asyncio.Event())
            assert await scheduler.run_request() is True
            assert request_row(db_url, request_id)[:2] == ("done", None)
            assert request_row(db_url, request_id)[3] == 2  # the second attempt
            assert await scheduler.run_request() is False  # nothing else waiting

            # a worker stopped in the middle of a reconcile gives the request back at once
            [(second_id, _, _)] = ask_as_owner(db_url, merchant.practice_id)
            standin.state.add_fault(
                {"path_prefix": "/checkout/v3/payment", "kind": "latency", "latency_ms": 3000}
            )
            running = asyncio.create_task(scheduler.run_request())
            await wait_for(lambda: request_row(db_url, second_id)[2] is not None, timeout=10)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
    finally:
        await pool.close()
    status, _, run_id, attempts, finished = request_row(db_url, second_id)
    assert (status, run_id, attempts, finished) == ("pending", None, 0, False)
    # its interrupted run is recorded as failed, never as a success
    assert query(
        db_url, "select status, error from app.sync_runs where run_by = 'request' order by id"
    )[-1] == ("failed", "interrupted")


async def test_retention_prunes_old_finished_requests_in_batches(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    query(
        db_url,
        "insert into app.sync_requests (practice_id, merchant_account_id, status, finished_at) "
        "select %s, %s, s, now() - interval '40 days' "
        "from unnest(array['done', 'failed', 'done']) as s "
        "union all select %s, %s, 'done', now() - interval '1 day' "
        "union all select %s, %s, 'pending', null returning id",
        (merchant.practice_id, merchant.merchant_account_id) * 3,
    )
    settings = worker_settings(
        db_url, standin.base_url, retention_batch_size=2, scheduler_enabled=False
    )
    pool = make_pool(settings, application_name="test")
    await pool.open()
    try:
        async with MxClient(standin.base_url) as mx:
            totals = await Scheduler(settings, pool, mx, asyncio.Event()).prune()
    finally:
        await pool.close()
    assert totals["sync_requests"] == 3
    assert query(
        db_url, "select status, finished_at is null from app.sync_requests order by id"
    ) == [("done", False), ("pending", True)]
