"""Backfill against the MX stand-in: interrupted by a failing page, resumed with --resume,
every payment present exactly once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.__main__ import main
from worker.commands.sync import sync_context
from worker.sync import Account, Backfill

STANDIN_SEED = 13

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000020003)


async def test_interrupted_backfill_resumes_and_applies_once(
    db_url: str,
    standin: StandinHandle,
    merchant: Merchant,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mid = merchant.mx_merchant_id
    now = datetime.now(UTC)
    old = standin.state.create_sale(mid, lines=[TRT], created=now - timedelta(days=20))
    recent = [
        standin.state.create_sale(mid, lines=[TRT], created=now - timedelta(days=3, minutes=i))
        for i in range(6)
    ]
    with_contract = standin.state.create_sale(mid, lines=[TRT], contract={"interval": "Monthly"})
    # one webhook did arrive
    ingest(db_url, merchant.token, recent[0]["webhook"])
    settings = worker_settings(db_url, standin.base_url, sync_page_size=2, scheduler_enabled=False)
    since = now - timedelta(days=10)

    async with sync_context(settings) as ctx:
        original = ctx.mx.list_payments
        calls = 0

        async def second_page_fails(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
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
        job = await Backfill.start(ctx, Account(merchant.merchant_account_id, mid), since)
        first = await job.run_to_end()

    assert first.status == "failed"
    [(status, cursor, queued)] = query(db_url, "select status, cursor, queued from app.sync_runs")
    assert status == "failed"
    assert cursor["phase"] == "payments"
    assert cursor["offset"] == 2
    assert queued == 1  # the newest page: the contract sale (recent[0] is queued by its webhook)

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MX_BASE_URL", standin.base_url)
    monkeypatch.setenv("SYNC_PAGE_SIZE", "2")
    code = await asyncio.to_thread(
        main, ["backfill", "--mx-merchant-id", str(mid), "--resume", "--json"]
    )
    out = capsys.readouterr().out
    [result] = json.loads(out[out.index("[") :])
    assert code == 0, out
    assert result["status"] == "succeeded"
    assert result["contracts"] == 1

    runs = query(
        db_url,
        "select status, resumed_from_id is not null, cursor ->> 'phase' "
        "from app.sync_runs order by id",
    )
    assert runs == [("failed", False, "payments"), ("succeeded", True, "contracts")]

    await drain(settings)
    wanted = {s["payment"]["id"] for s in [*recent, with_contract]}
    stored = query(db_url, "select id from app.payments")
    assert {r[0] for r in stored} == wanted  # the 20-day-old sale is before --since
    assert old["payment"]["id"] not in {r[0] for r in stored}
    # once each: one event per payment, none applied twice
    per_payment = query(
        db_url, "select payment_id, count(*) from app.webhook_events group by payment_id"
    )
    assert all(n == 1 for _, n in per_payment)
    assert len(per_payment) == len(wanted)

    # a new backfill over the same range finds nothing
    code = await asyncio.to_thread(
        main,
        ["backfill", "--mx-merchant-id", str(mid), "--since", since.date().isoformat(), "--json"],
    )
    out = capsys.readouterr().out
    [again] = json.loads(out[out.index("[") :])
    assert (code, again["found"], again["queued"]) == (0, 0, 0)


def test_resume_without_an_unfinished_backfill_is_a_usage_error(
    db_url: str, standin: StandinHandle, merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MX_BASE_URL", standin.base_url)
    assert main(["backfill", "--mx-merchant-id", str(merchant.mx_merchant_id), "--resume"]) == 2
