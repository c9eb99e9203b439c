"""Contract sync against the MX stand-in: contract evidence reaches memberships without a
payment (Inactive -> paused, Cancelled -> canceled), unknown statuses are stored as data, and
a contract's undelivered payments are queued and linked."""

from __future__ import annotations

from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.commands.sync import sync_context
from worker.settings import WorkerSettings
from worker.sync import Account, RunResult, sync_contracts

STANDIN_SEED = 12

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}
SEMA = {"product_name": "Semaglutide 2.5mg", "price": "299"}

MEMBERSHIP_SQL = """
    select m.status, m.contract_id, m.contract_status, m.billing_interval, m.amount,
        m.next_billing_on, m.canceled_at is not null, m.status_source
    from app.memberships as m
    inner join app.patients as p on m.patient_id = p.id
    where p.mx_customer_id = %s
"""


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000020002)


async def contracts(settings: WorkerSettings, merchant: Merchant) -> RunResult:
    async with sync_context(settings) as ctx:
        return await sync_contracts(
            ctx, Account(merchant.merchant_account_id, merchant.mx_merchant_id)
        )


def membership(db_url: str, customer_id: int) -> tuple[Any, ...]:
    [row] = query(db_url, MEMBERSHIP_SQL, (customer_id,))
    return row


async def test_contract_status_reaches_memberships(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    mid = merchant.mx_merchant_id
    paused = standin.state.create_sale(mid, lines=[TRT], contract={"interval": "Monthly"})
    canceled = standin.state.create_sale(
        mid, lines=[TRT], contract={"interval": "Weekly", "every": "4 Weeks"}
    )
    odd = standin.state.create_sale(mid, lines=[TRT], contract={"interval": "Monthly"})
    for sale in (paused, canceled, odd):
        ingest(db_url, merchant.token, sale["webhook"])
    await drain(settings)

    first = await contracts(settings, merchant)
    assert (first.status, first.contracts, first.found) == ("succeeded", 3, 0)
    p_customer = paused["invoice"]["customer"]["id"]
    status, contract_id, contract_status, interval, amount, next_billing, _, _ = membership(
        db_url, p_customer
    )
    assert (status, contract_id, contract_status, interval) == (
        "active",
        paused["contract"]["id"],
        "Active",
        "Monthly",
    )
    assert str(amount) == "150.00"
    assert next_billing is not None

    standin.state.set_contract_status(paused["contract"]["id"], "Inactive")
    standin.state.set_contract_status(canceled["contract"]["id"], "Cancelled")
    standin.state.set_contract_status(odd["contract"]["id"], "Suspended")
    second = await contracts(settings, merchant)
    assert second.status == "succeeded"

    assert membership(db_url, p_customer)[0:3] == ("paused", paused["contract"]["id"], "Inactive")
    c_row = membership(db_url, canceled["invoice"]["customer"]["id"])
    assert (c_row[0], c_row[2], c_row[5], c_row[6], c_row[7]) == (
        "canceled",
        "Cancelled",
        None,
        True,
        "contract",
    )
    o_row = membership(db_url, odd["invoice"]["customer"]["id"])
    assert (o_row[0], o_row[2]) == ("active", "Suspended")  # stored, status unchanged

    # the contract rows and their patients
    rows = query(
        db_url,
        "select c.id, c.status, p.mx_customer_id from app.contracts as c "
        "inner join app.patients as p on c.patient_id = p.id order by c.id",
    )
    assert [(r[1]) for r in rows] == ["Inactive", "Cancelled", "Suspended"]
    events = query(
        db_url,
        "select new_status, source from app.membership_events "
        "where new_status <> 'active' order by id",
    )
    # each contract's first charge came from a non-recurring source: a one-time purchase
    # until the first contract sync showed the contract billing it (issue 14)
    assert events == [
        ("one_time", "payment"),
        ("one_time", "payment"),
        ("one_time", "payment"),
        ("paused", "contract"),
        ("canceled", "contract"),
    ]

    # the same sync again changes nothing
    third = await contracts(settings, merchant)
    assert third.status == "succeeded"
    assert query(db_url, "select count(*) from app.membership_events") == [(8,)]


async def test_contract_payments_never_delivered_are_queued_then_linked(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    settings = worker_settings(db_url, standin.base_url, scheduler_enabled=False)
    sale = standin.state.create_sale(
        merchant.mx_merchant_id, lines=[SEMA], contract={"interval": "Monthly"}
    )
    renewal = standin.state.create_sale(merchant.mx_merchant_id, contract_id=sale["contract"]["id"])
    # no webhook at all: the contract sync finds both payments
    first = await contracts(settings, merchant)
    assert (first.found, first.queued) == (2, 2)
    assert query(db_url, "select count(*) from app.memberships") == [(0,)]
    await drain(settings)
    second = await contracts(settings, merchant)
    assert (second.found, second.queued) == (0, 0)
    customer = sale["invoice"]["customer"]["id"]
    row = membership(db_url, customer)
    assert (row[0], row[1], row[2]) == ("active", sale["contract"]["id"], "Active")
    links = query(db_url, "select payment_id from app.contract_payments order by payment_id")
    assert links == sorted([(sale["payment"]["id"],), (renewal["payment"]["id"],)])
