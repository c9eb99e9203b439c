"""Reconcile against the MX stand-in: missed webhooks are found, queued once, and processed;
a failed run is recorded as failed; the per-merchant rate limit holds."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.__main__ import main
from worker.commands.sync import sync_context
from worker.metrics import REGISTRY
from worker.sync import Account, TokenBucket, reconcile

STANDIN_SEED = 11

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000020001)


@pytest.fixture
def cli_env(db_url: str, standin: StandinHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MX_BASE_URL", standin.base_url)
    monkeypatch.setenv("SYNC_PAGE_SIZE", "2")
    monkeypatch.setenv("MX_MAX_CALLS_PER_MINUTE_PER_MERCHANT", "6000")


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("[") :])


def run_rows(db_url: str) -> list[tuple[Any, ...]]:
    return query(
        db_url,
        "select kind, status, found, queued, watermark is not null, error "
        "from app.sync_runs order by id",
    )


async def test_reconcile_queues_exactly_the_missed_payments(
    db_url: str,
    standin: StandinHandle,
    merchant: Merchant,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sales = [standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT]) for _ in range(5)]
    delivered, missed = sales[:2], sales[2:]
    for s in delivered:
        assert ingest(db_url, merchant.token, s["webhook"])[0] == "queued"
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    await drain(settings)

    gaps_before = REGISTRY.get_sample_value("mx_worker_reconcile_gaps_total") or 0
    code, [result] = await asyncio.to_thread(
        cli_json, capsys, "reconcile", "--mx-merchant-id", str(merchant.mx_merchant_id)
    )
    assert code == 0
    assert (result["status"], result["found"], result["queued"]) == ("succeeded", 3, 3)
    # the gaps are counted for Prometheus (and the reconcile alert)
    assert REGISTRY.get_sample_value("mx_worker_reconcile_gaps_total") == gaps_before + 3
    queued = query(
        db_url,
        "select payment_id, origin, event_type from app.webhook_events "
        "where origin = 'reconcile' order by payment_id",
    )
    assert queued == sorted((s["payment"]["id"], "reconcile", "Reconcile") for s in missed)

    # while those are still queued, a second reconcile queues nothing again
    code, [again] = await asyncio.to_thread(cli_json, capsys, "reconcile", "--all")
    assert (again["found"], again["queued"]) == (0, 0)

    await drain(settings)
    stored = {row[0] for row in query(db_url, "select id from app.payments")}
    assert stored == {s["payment"]["id"] for s in sales}

    code, [last] = await asyncio.to_thread(cli_json, capsys, "reconcile", "--all")
    assert (code, last["status"], last["found"], last["queued"]) == (0, "succeeded", 0, 0)
    assert [r[:5] for r in run_rows(db_url)] == [("reconcile", "succeeded", 3, 3, True)] + [
        ("reconcile", "succeeded", 0, 0, True)
    ] * 2

    # a refund changes the sale's refunded amount and adds a Return: both are found
    standin.state.create_refund(sales[0]["payment"]["id"], amount="50")
    code, [refund] = await asyncio.to_thread(cli_json, capsys, "reconcile", "--all")
    assert (refund["found"], refund["queued"]) == (2, 2)
    await drain(settings)
    [(refunded,)] = query(
        db_url,
        "select refunded_amount from app.payments where id = %s",
        (sales[0]["payment"]["id"],),
    )
    assert str(refunded) == "50.00"


async def test_mx_failure_mid_run_is_recorded_as_failed(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    for _ in range(5):
        standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    settings = worker_settings(db_url, standin.base_url, sync_page_size=2, scheduler_enabled=False)
    async with sync_context(settings) as ctx:
        original = ctx.mx.list_payments
        calls = 0
        seen_running: list[tuple[Any, ...]] = []

        async def second_page_fails(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                # the run row was committed before the first MX call
                seen_running.extend(query(db_url, "select kind, status from app.sync_runs"))
            if calls == 2:
                standin.state.add_fault(
                    {
                        "path_prefix": "/checkout/v3/payment",
                        "kind": "status",
                        "status": 503,
                        "count": 1,
                    }
                )
            return await original(*args, **kwargs)

        ctx.mx.list_payments = second_page_fails  # type: ignore[method-assign]
        account = Account(merchant.merchant_account_id, merchant.mx_merchant_id)
        result = await reconcile(ctx, account)

    assert seen_running == [("reconcile", "running")]
    assert result.status == "failed"
    [(status, pages, found, has_watermark, error, finished)] = query(
        db_url,
        "select status, pages, found, watermark is not null, error, finished_at is not null "
        "from app.sync_runs",
    )
    assert (status, pages, found, has_watermark, finished) == ("failed", 1, 2, False, True)
    assert "503" in error
    assert error.startswith("MX:")
    assert query(
        db_url, "select private.reconcile_watermark(%s)", (merchant.merchant_account_id,)
    ) == [(None,)]


async def test_token_bucket_holds_the_rate() -> None:
    bucket = TokenBucket(rate_per_minute=600, burst=2)  # 10 a second after a burst of 2
    started = time.monotonic()
    for _ in range(7):
        await bucket.acquire()
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.5
