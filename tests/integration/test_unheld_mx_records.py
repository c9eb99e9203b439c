"""Issue 12, item 11, end to end: MX data the project does not hold never dead-letters an
event. A real webhook call (the webhook's procedure), the real worker, the MX stand-in serving
the records or answering 404 for them; the reference is kept as data and linked when the
record arrives, and everything else the event carries is applied."""

from __future__ import annotations

from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000012345)


def _not_found(standin: StandinHandle, path: str, count: int | None = None) -> None:
    """From now on (or for the next ``count`` calls) MX answers 404 for this record."""
    standin.state.add_fault({"path_prefix": path, "kind": "not_found", "count": count})


def _events(db_url: str) -> list[tuple[Any, ...]]:
    return query(db_url, "select payment_id, status, last_error from app.webhook_events")


def _dead_letters(db_url: str) -> int:
    [(n,)] = query(db_url, "select queue_length from private.queue_metrics('mx_ingest_dlq')")
    return int(n)


async def test_refund_of_a_sale_mx_no_longer_serves(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    # a sale from before the practice was onboarded: never stored, and MX answers 404 for it
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    sale_id = created["payment"]["id"]
    refund = standin.state.create_refund(sale_id, amount="50")
    _not_found(standin, f"/checkout/v3/payment/{sale_id}")

    ingest(db_url, merchant.token, refund["webhook"])
    await drain(worker_settings(db_url, standin.base_url))

    assert [status for (_, status, _) in _events(db_url)] == ["processed"]
    assert _dead_letters(db_url) == 0
    [(rid, rtype, amount, original, mx_original)] = query(
        db_url,
        "select id, type, amount, original_payment_id, mx_original_id from app.payments",
    )
    assert (rid, rtype, str(amount), original, mx_original) == (
        refund["payment"]["id"],
        "Return",
        "50.00",
        None,
        sale_id,
    )
    # everything else the refund carries is kept: its invoice (still served), lines, patient
    assert query(db_url, "select count(*) from app.invoice_lines") == [(1,)]
    assert query(db_url, "select count(*) from app.payment_invoices") == [(1,)]
    assert query(db_url, "select count(*) from app.patients") == [(1,)]

    # MX serves the sale again (or a backfill finds it): the refund links to it
    standin.state.clear_faults()
    ingest(db_url, merchant.token, created["webhook"])
    await drain(worker_settings(db_url, standin.base_url))
    assert query(db_url, "select original_payment_id from app.payments where id = %s", (rid,)) == [
        (sale_id,)
    ]


@pytest.mark.parametrize("none", [0, "0", ""])
async def test_reference_ids_mx_writes_as_zero_or_empty_mean_none(
    db_url: str, standin: StandinHandle, merchant: Merchant, none: Any
) -> None:
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT], source="Recurring")
    payment_id = created["payment"]["id"]
    invoice_id = created["invoice"]["id"]
    stored = standin.state.payments[payment_id]
    stored["originalId"] = none
    stored["invoiceIds"] = [none, invoice_id]
    standin.state.invoices[invoice_id]["customer"]["id"] = none

    ingest(db_url, merchant.token, created["webhook"])
    await drain(worker_settings(db_url, standin.base_url))

    assert [status for (_, status, _) in _events(db_url)] == ["processed"]
    assert query(
        db_url, "select original_payment_id, mx_original_id, mx_invoice_ids from app.payments"
    ) == [(None, None, [invoice_id])]
    assert query(db_url, "select mx_customer_id from app.patients") == [(None,)]
    assert query(db_url, "select count(*) from app.invoice_lines") == [(1,)]
    assert query(db_url, "select status from app.memberships") == [("active",)]


async def test_an_invoice_mx_answers_404_for(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    first = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT], source="Recurring")
    invoice_id = first["invoice"]["id"]
    first_id = first["payment"]["id"]
    # MX answers 404 for the invoice once (it does for invoices it has not finished writing)
    _not_found(standin, f"/checkout/v3/invoice/{invoice_id}", count=1)

    ingest(db_url, merchant.token, first["webhook"])
    await drain(worker_settings(db_url, standin.base_url))

    assert [status for (_, status, _) in _events(db_url)] == ["processed"]
    assert _dead_letters(db_url) == 0
    # the payment and its patient are applied, the invoice id kept as data
    assert query(db_url, "select id, mx_invoice_ids from app.payments") == [
        (first_id, [invoice_id])
    ]
    assert query(db_url, "select count(*) from app.invoices") == [(0,)]
    assert query(db_url, "select count(*) from app.patients") == [(1,)]

    # a refund of the same sale names the same invoice, which MX now serves: the invoice is
    # stored and both payments are linked to it
    refund = standin.state.create_refund(first_id, amount="10")
    ingest(db_url, merchant.token, refund["webhook"])
    await drain(worker_settings(db_url, standin.base_url))

    assert query(
        db_url, "select payment_id from app.payment_invoices order by payment_id"
    ) == sorted([(first_id,), (refund["payment"]["id"],)])
    assert query(db_url, "select count(*) from app.invoice_lines") == [(1,)]
    assert query(db_url, "select status from app.memberships") == [("active",)]
