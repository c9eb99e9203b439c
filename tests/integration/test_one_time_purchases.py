"""Issue 14 end to end: MX notifications through the webhook's SQL and the real worker; a
one-off buyer is never in the members' list (nor counted), a recurring buyer is; and the
scheduler's membership sweep reports a practice that fails while it sweeps the others."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import as_member, drain, ingest, query, worker_settings
from worker.commands.sync import sync_context
from worker.consumer import make_pool
from worker.mx.client import MxClient
from worker.scheduler import Scheduler
from worker.sync import Account, sync_contracts

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    account = onboard(db_url, standin, 1000040001)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "update app.practices set auto_apply_suggestions = true where id = %s",
            (account.practice_id,),
        )
    return account


async def test_a_one_off_buyer_is_never_a_member(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    mid = merchant.mx_merchant_id
    state = standin.state
    olga = state.create_customer(mid, name="Olga Oneoff")["id"]
    rita = state.create_customer(mid, name="Rita Recurring")["id"]
    sales = [
        state.create_sale(mid, customer_id=olga, lines=[TRT], source="Terminal"),
        state.create_sale(mid, customer_id=rita, lines=[TRT], contract={"interval": "Monthly"}),
    ]
    for created in sales:
        assert ingest(db_url, merchant.token, created["webhook"])[0] == "queued"
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    await drain(settings)
    # the contract's first charge may come from any source: the contract sync links it
    async with sync_context(settings) as ctx:
        run = await sync_contracts(ctx, Account(merchant.merchant_account_id, mid))
    assert run.status == "succeeded", run

    members = as_member(
        db_url,
        merchant.practice_id,
        "select patient_name, status from api.list_memberships(%s)",
        (merchant.practice_id,),
    )
    assert members == [("Rita Recurring", "active")]
    one_time = as_member(
        db_url,
        merchant.practice_id,
        "select patient_name, status from api.list_one_time_purchases(%s)",
        (merchant.practice_id,),
    )
    assert one_time == [("Olga Oneoff", "one_time")]
    counts = dict(
        as_member(
            db_url,
            merchant.practice_id,
            "select tab, member_count from api.membership_tab_counts(%s)",
            (merchant.practice_id,),
        )
    )
    assert counts["all"] == 1

    # the overdue sweep, months later: the member is past due, the one-off buyer untouched
    query(db_url, "select private.mark_overdue_memberships(now() + interval '90 days')")
    members = as_member(
        db_url,
        merchant.practice_id,
        "select patient_name, status from api.list_memberships(%s)",
        (merchant.practice_id,),
    )
    assert members == [("Rita Recurring", "past_due")]
    assert as_member(
        db_url,
        merchant.practice_id,
        "select count(*) from api.list_memberships(%s, p_status => array['active', 'past_due'])"
        " where patient_name = 'Olga Oneoff'",
        (merchant.practice_id,),
    ) == [(0,)]


async def test_the_sweep_reports_a_failing_practice_and_sweeps_the_others(
    db_url: str, standin: StandinHandle, caplog: pytest.LogCaptureFixture
) -> None:
    good = onboard(db_url, standin, 1000040002)
    bad = onboard(db_url, standin, 1000040003)
    with psycopg.connect(db_url) as conn:
        for account, name in ((good, "Gina Good"), (bad, "Bert Bad")):
            patient = conn.execute(
                "insert into app.patients (practice_id, name) values (%s, %s) returning id",
                (account.practice_id, name),
            ).fetchone()
            assert patient is not None
            conn.execute(
                "insert into app.memberships (practice_id, patient_id, category_id, status,"
                " status_source, last_paid_at, recurring_since)"
                " values (%s, %s, private.uncategorized_id(%s), 'active', 'payment',"
                " now() - interval '60 days', now() - interval '60 days')",
                (account.practice_id, patient[0], account.practice_id),
            )
        # the bad practice's data makes its sweep fail (any error: here a trigger)
        conn.execute(
            "create function public.refuse_update() returns trigger language plpgsql as"
            " $$ begin raise exception 'bad data'; end $$"
        )
        conn.execute(
            "create trigger refuse_update before update on app.memberships for each row"
            f" when (new.practice_id = '{bad.practice_id}') execute function public.refuse_update()"
        )
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    pool = make_pool(settings, application_name="test")
    await pool.open()
    try:
        async with MxClient(standin.base_url) as mx:
            scheduler = Scheduler(settings, pool, mx, asyncio.Event())
            with caplog.at_level(logging.ERROR, logger="worker.scheduler"):
                assert await scheduler.mark_overdue() == 1
    finally:
        await pool.close()
    assert scheduler.counts["sweep_practice_failed"] == 1
    failures = [r for r in caplog.records if "sweep failed" in r.getMessage()]
    assert len(failures) == 1
    fields = failures[0].fields  # type: ignore[attr-defined]
    assert fields["practice_id"] == str(bad.practice_id)
    assert "bad data" in fields["error"]
    assert query(
        db_url,
        "select pt.name, m.status from app.memberships as m"
        " join app.patients as pt on pt.id = m.patient_id order by pt.name",
    ) == [("Bert Bad", "active"), ("Gina Good", "past_due")]
