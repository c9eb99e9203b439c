"""From MX notifications to what clinic staff see: the worker's events produce the memberships
the dashboard API shows, read as a member of the practice exactly as PostgREST does."""

from __future__ import annotations

import psycopg
import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import as_member, drain, ingest, worker_settings
from worker.commands.sync import sync_context
from worker.sync import Account, sync_contracts

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}
SEMA = {"product_name": "Semaglutide 2.5mg", "price": "299"}
LAB = {"product_name": "Lab Panel", "price": "181.12"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    account = onboard(db_url, standin, 1000030001)
    with psycopg.connect(db_url) as conn:
        # the practice trusts the keyword suggestions: TRT and Weight Loss products map at once
        conn.execute(
            "update app.practices set auto_apply_suggestions = true where id = %s",
            (account.practice_id,),
        )
    return account


async def test_the_dashboard_shows_what_mx_sent(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    mid = merchant.mx_merchant_id
    state = standin.state
    ann = state.create_customer(mid, name="Ann Active")["id"]
    dan = state.create_customer(mid, name="Dan Declined")["id"]
    cal = state.create_customer(mid, name="Cal Canceled")["id"]
    sales = [
        # Ann: TRT and a lab panel on one invoice
        state.create_sale(mid, customer_id=ann, lines=[TRT, LAB], contract={"interval": "Monthly"}),
        # Dan: Weight Loss, then the recurring charge is declined
        dan_first := state.create_sale(
            mid, customer_id=dan, lines=[SEMA], contract={"interval": "Monthly"}
        ),
        # Cal: TRT; his contract is canceled in MX afterwards
        cal_first := state.create_sale(
            mid, customer_id=cal, lines=[TRT], contract={"interval": "Monthly"}
        ),
    ]
    sales.append(state.create_sale(mid, contract_id=dan_first["contract"]["id"], declined=True))
    state.set_contract_status(cal_first["contract"]["id"], "Cancelled")
    for sale in sales:
        ingest(db_url, merchant.token, sale["webhook"])

    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    await drain(settings)
    async with sync_context(settings) as ctx:
        run = await sync_contracts(ctx, Account(merchant.merchant_account_id, mid))
    assert run.status == "succeeded", run

    rows = as_member(
        db_url,
        merchant.practice_id,
        "select patient_name, category_name, status from api.list_memberships(%s) order by 1, 2",
        (merchant.practice_id,),
    )
    assert rows == [
        ("Ann Active", "TRT", "active"),
        # no keyword rule names "Lab Panel": it waits in Uncategorized for staff to decide
        ("Ann Active", "Uncategorized", "active"),
        ("Cal Canceled", "TRT", "canceled"),
        ("Dan Declined", "Weight Loss", "past_due"),
    ]
    tabs = dict(
        as_member(
            db_url,
            merchant.practice_id,
            "select label, member_count from api.membership_tab_counts(%s)",
            (merchant.practice_id,),
        )
    )
    assert tabs["All"] == 4
    assert tabs["TRT"] == 2
    assert tabs["Weight Loss"] == 1
    assert tabs["Cancellations"] == 1
