"""worker.mx.client against the real stand-in over loopback HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from mxstandin import StandinHandle, start_standin
from mxstandin.traffic import provision_merchant, run_traffic, webhook_for_payment
from webhook.payload import parse_body
from worker.mx.client import (
    PRODUCTION_BASE_URL,
    SANDBOX_BASE_URL,
    MxClient,
    MxCredentials,
    MxPermanentError,
    MxTransientError,
    base_url_for,
    parse_retry_after,
)
from worker.mx.models import MxPayment


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=1234)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def _clear_faults(standin: StandinHandle) -> Iterator[None]:
    standin.state.clear_faults()
    yield
    standin.state.clear_faults()


@pytest.fixture
def merchant(standin: StandinHandle) -> dict[str, Any]:
    return standin.state.create_merchant(name="Lone Star Wellness", timezone_offset="-6:00")


@pytest.fixture
def creds(merchant: dict[str, Any]) -> MxCredentials:
    return MxCredentials(merchant["consumer_key"], merchant["consumer_secret"])


@pytest.fixture
async def client(standin: StandinHandle) -> AsyncIterator[MxClient]:
    async with MxClient(standin.base_url, total_timeout=5.0, read_timeout=5.0) as c:
        yield c


def _fault(standin: StandinHandle, **spec: Any) -> None:
    resp = httpx.post(standin.control_url + "/faults", json=spec)
    assert resp.status_code == 200, resp.text


# -- basics -------------------------------------------------------------------------------------


def test_credentials_repr_hides_secret() -> None:
    creds = MxCredentials("key123", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(creds)
    assert "s3cr3t-value" not in str(creds)
    assert "key123" in repr(creds)


def test_base_url_for() -> None:
    assert base_url_for("production", None) == PRODUCTION_BASE_URL
    assert base_url_for("sandbox", None) == SANDBOX_BASE_URL
    assert base_url_for("sandbox", "http://127.0.0.1:9/checkout/v3/") == (
        "http://127.0.0.1:9/checkout/v3"
    )
    with pytest.raises(ValueError, match="unknown"):
        base_url_for("moon", None)


def test_parse_retry_after() -> None:
    now = datetime(2025, 8, 11, 10, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    assert parse_retry_after(earlier, now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- happy paths with the quirks --------------------------------------------------------------


async def test_get_payment_invoice_contract(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    sale = standin.state.create_sale(
        mid,
        lines=[
            {"product_name": "Tirzepatide 10mg"},
            {"product_name": "BPC-157 5mg"},
            {"product_name": "Office Visit"},
        ],
        contract={"interval": "Weekly", "every": "4 Weeks"},
        source="QuickPay",
    )
    pid = sale["payment"]["id"]

    payment = await client.get_payment(creds, mid, pid)
    assert payment.id == pid
    assert payment.merchant_id == mid
    assert payment.amount == Decimal("449.5") + Decimal("129.99") + Decimal("75")
    assert payment.status == "Approved"
    assert payment.created is not None
    assert payment.created.tzinfo is not None
    assert payment.invoice_ids == sale["payment"]["invoiceIds"]
    assert payment.settled_date is None  # "" on an unsettled payment
    canon = payment.canonical()
    assert canon["amount"] == "654.49"
    assert "token" not in canon["raw"]["cardAccount"]
    assert canon["card"]["last4"] == sale["payment"]["cardAccount"]["last4"]

    invoice = await client.get_invoice(creds, mid, payment.invoice_ids[0])
    assert invoice.invoice_number == payment.invoice_number
    assert [p.product_name for p in invoice.purchases] == [
        "Tirzepatide 10mg",
        "BPC-157 5mg",
        "Office Visit",
    ]
    assert invoice.customer is not None
    assert invoice.customer.name == payment.customer_name
    assert [p.id for p in invoice.payments] == [pid]

    contract = await client.get_contract(creds, mid, sale["contract"]["id"])
    assert contract.status == "Active"
    assert contract.interval == "Weekly"
    assert contract.every == "4 Weeks"
    assert contract.amount == payment.amount
    assert contract.next_bill_date is not None
    assert contract.start_date is not None
    assert contract.next_bill_date - contract.start_date == timedelta(weeks=4)

    merchant_info = await client.get_merchant(creds, mid)
    assert merchant_info.utc_offset() == timedelta(hours=-6)
    assert merchant_info.daylight_saving is True


async def test_settled_refund_decline_and_voided(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    state = standin.state
    sales = [state.create_sale(mid)["payment"]["id"] for _ in range(2)]
    for pid in sales:
        state.set_payment_status(pid, "Settled")
    settled = [await client.get_payment(creds, mid, pid) for pid in sales]
    raw_dates = [p.raw["settledDate"] for p in settled]
    assert any(not d.endswith("Z") for d in raw_dates)  # the missing-Z quirk appears
    for p in settled:
        assert p.status == "Settled"
        assert p.settled_date is not None
        assert p.settled_date.utcoffset() == timedelta(0)
        assert p.settled_amount == p.amount

    refund = state.create_refund(sales[0], amount="10.5")["payment"]
    got = await client.get_payment(creds, mid, refund["id"])
    assert got.type == "Return"
    assert got.amount == Decimal("10.5")
    assert got.original_id == sales[0]
    original = await client.get_payment(creds, mid, sales[0])
    assert original.refunded_amount == Decimal("10.5")

    declined = state.create_sale(mid, declined=True)["payment"]
    got = await client.get_payment(creds, mid, declined["id"])
    assert got.status == "Declined"
    assert got.response_code not in (None, 0)

    state.set_payment_status(sales[1], "Voided")
    assert (await client.get_payment(creds, mid, sales[1])).status == "Voided"


# -- errors -------------------------------------------------------------------------------------


async def test_invalid_credentials(
    standin: StandinHandle, merchant: dict[str, Any], client: MxClient
) -> None:
    pid = standin.state.create_sale(merchant["merchant_id"])["payment"]["id"]
    bad = MxCredentials(merchant["consumer_key"], "wrong-secret")
    with pytest.raises(MxPermanentError) as info:
        await client.get_payment(bad, merchant["merchant_id"], pid)
    assert info.value.kind == "invalid_credentials"
    assert info.value.status == 401
    assert "wrong-secret" not in str(info.value)


async def test_other_merchants_data_is_unauthorized(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    other = standin.state.create_merchant(name="Other Clinic")
    pid = standin.state.create_sale(other["merchant_id"])["payment"]["id"]
    with pytest.raises(MxPermanentError) as info:
        await client.get_payment(creds, merchant["merchant_id"], pid)
    assert info.value.kind == "unauthorized"
    with pytest.raises(MxPermanentError) as info2:
        await client.list_payments(creds, other["merchant_id"], limit=10, offset=0)
    assert info2.value.kind == "unauthorized"


async def test_not_found(merchant: dict[str, Any], creds: MxCredentials, client: MxClient) -> None:
    mid = merchant["merchant_id"]
    for call in (client.get_payment, client.get_invoice, client.get_contract):
        with pytest.raises(MxPermanentError) as info:
            await call(creds, mid, 1)
        assert info.value.kind == "not_found"
        assert info.value.status == 404
        assert info.value.body is not None
        assert info.value.body.error_code == "NotFound"


async def test_429_with_retry_after(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    pid = standin.state.create_sale(mid)["payment"]["id"]
    prefix = "/checkout/v3/payment"
    _fault(standin, path_prefix=prefix, kind="status", status=429, retry_after=2, count=1)
    with pytest.raises(MxTransientError) as info:
        await client.get_payment(creds, mid, pid)
    assert info.value.status == 429
    assert info.value.retry_after == 2.0
    # count=1: the next call goes through
    assert (await client.get_payment(creds, mid, pid)).id == pid

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    _fault(standin, path_prefix=prefix, kind="status", status=429, retry_after=when, count=1)
    with pytest.raises(MxTransientError) as info2:
        await client.get_payment(creds, mid, pid)
    assert info2.value.retry_after is not None
    assert 50 < info2.value.retry_after <= 60


async def test_503_is_transient(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    _fault(standin, path_prefix="/checkout/v3/invoice", kind="status", status=503, count=2)
    for _ in range(2):
        with pytest.raises(MxTransientError) as info:
            await client.get_invoice(creds, mid, 123)
        assert info.value.status == 503
        assert info.value.retry_after is None
    with pytest.raises(MxPermanentError):  # faults used up: a real 404 now
        await client.get_invoice(creds, mid, 123)


async def test_hang_becomes_transient_within_total_timeout(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials
) -> None:
    mid = merchant["merchant_id"]
    pid = standin.state.create_sale(mid)["payment"]["id"]
    _fault(standin, path_prefix="/checkout/v3/payment", kind="hang", count=1)
    async with MxClient(standin.base_url, read_timeout=30.0, total_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(MxTransientError) as info:
            await client.get_payment(creds, mid, pid)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert info.value.status is None
        assert (await client.get_payment(creds, mid, pid)).id == pid


async def test_connection_refused_is_transient(creds: MxCredentials) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with MxClient(f"http://127.0.0.1:{port}/checkout/v3", connect_timeout=1.0) as client:
        with pytest.raises(MxTransientError):
            await client.get_payment(creds, 1, 1)


async def test_bad_body_is_bad_response(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    _fault(standin, path_prefix="/checkout/v3/payment", kind="bad_body", count=1)
    with pytest.raises(MxPermanentError) as info:
        await client.get_payment(creds, merchant["merchant_id"], 1)
    assert info.value.kind == "bad_response"
    assert "MxPayment" in info.value.message
    assert "id" in info.value.message


async def test_injected_bad_credentials_and_not_found(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    pid = standin.state.create_sale(mid)["payment"]["id"]
    _fault(standin, path_prefix="/checkout/v3/payment", kind="bad_credentials", count=1)
    with pytest.raises(MxPermanentError) as info:
        await client.get_payment(creds, mid, pid)
    assert info.value.kind == "invalid_credentials"
    _fault(standin, path_prefix="/checkout/v3/payment", kind="not_found", count=1)
    with pytest.raises(MxPermanentError) as info2:
        await client.get_payment(creds, mid, pid)
    assert info2.value.kind == "not_found"


async def test_per_merchant_concurrency_cap(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials
) -> None:
    mid = merchant["merchant_id"]
    pid = standin.state.create_sale(mid)["payment"]["id"]
    _fault(standin, path_prefix="/checkout/v3/payment", kind="latency", latency_ms=150)
    async with MxClient(standin.base_url, per_merchant_concurrency=2) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.get_payment(creds, mid, pid) for _ in range(4)))
        capped = time.monotonic() - started
    async with MxClient(standin.base_url, per_merchant_concurrency=4) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.get_payment(creds, mid, pid) for _ in range(4)))
        free = time.monotonic() - started
    assert capped >= 0.29  # two waves of 150 ms
    assert free < capped


# -- subscriptions ------------------------------------------------------------------------------


async def test_subscription_duplicate_counts_as_done(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    url = "https://hooks.example.test/webhooks/mx/tok_abc"
    first = await client.put_subscription(creds, mid, "PaymentSuccess", url)
    assert first.outcome == "created"
    second = await client.put_subscription(creds, mid, "PaymentSuccess", url)
    assert second.outcome == "duplicate"
    assert second.ok
    await client.put_subscription(creds, mid, "RefundCreated", url)

    subs = await client.list_subscriptions(creds, mid)
    assert sorted(s.event_type or "" for s in subs) == ["PaymentSuccess", "RefundCreated"]
    stored = standin.state.subscriptions_for(mid)
    body = next(s for s in stored if s["eventType"] == "PaymentSuccess")
    assert (
        body["sources"]
        == "QuickPay,Customer,Invoice,Recurring,Order,MXExpress,MXRetail,API,Terminal,Rekey"
    )
    assert body["sendWebhook"] is True
    assert body["callbackUrl"] == url

    sub_id = next(s.id for s in subs if s.event_type == "PaymentSuccess")
    assert sub_id is not None
    await client.delete_subscription(creds, mid, sub_id)
    assert len(await client.list_subscriptions(creds, mid)) == 1
    with pytest.raises(MxPermanentError) as info:
        await client.delete_subscription(creds, mid, sub_id)
    assert info.value.kind == "not_found"
    # after deleting, subscribing again creates it again
    assert (await client.put_subscription(creds, mid, "PaymentSuccess", url)).outcome == "created"


async def test_subscription_validation_error_is_not_duplicate(
    merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    with pytest.raises(MxPermanentError) as info:
        await client.put_subscription(creds, merchant["merchant_id"], "", "https://x.test/h")
    assert info.value.kind == "validation"
    assert info.value.status == 400


# -- paging -------------------------------------------------------------------------------------


async def test_list_payments_paging(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    base = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)
    ids = [
        standin.state.create_sale(mid, created=base + timedelta(days=i))["payment"]["id"]
        for i in range(7)
    ]
    seen: list[int] = []
    offset = 0
    while True:
        page = await client.list_payments(creds, mid, limit=3, offset=offset)
        assert page.record_count == 7
        assert len(page.records) <= 3
        for record in page.records:
            assert "invoiceIds" not in record.raw
            assert record.invoice_ids == []
        seen.extend(r.id for r in page.records)
        offset += len(page.records)
        if not page.records or offset >= page.record_count:
            break
    assert seen == list(reversed(ids))  # newest first

    recent = await client.list_payments(
        creds, mid, limit=100, offset=0, start_date=(base + timedelta(days=5)).date()
    )
    assert [r.id for r in recent.records] == [ids[6], ids[5]]


async def test_list_contracts_paging_status_and_cap(
    standin: StandinHandle, merchant: dict[str, Any], creds: MxCredentials, client: MxClient
) -> None:
    mid = merchant["merchant_id"]
    contract_ids = [
        standin.state.create_sale(mid, contract={"interval": "Monthly"})["contract"]["id"]
        for _ in range(105)
    ]
    standin.state.set_contract_status(contract_ids[0], "Cancelled")
    standin.state.set_contract_status(contract_ids[1], "Inactive")

    page = await client.list_contracts(creds, mid, limit=500, offset=0)
    assert page.record_count == 105
    assert len(page.records) == 100  # MX serves at most 100
    rest = await client.list_contracts(creds, mid, limit=100, offset=100)
    assert len(rest.records) == 5
    assert {c.id for c in page.records} | {c.id for c in rest.records} == set(contract_ids)

    cancelled = await client.list_contracts(creds, mid, status="Cancelled")
    assert [c.id for c in cancelled.records] == [contract_ids[0]]
    assert cancelled.records[0].next_bill_date is None
    inactive = await client.list_contracts(creds, mid, status="Inactive")
    assert [c.status for c in inactive.records] == ["Inactive"]

    # a second charge on one contract, then its payments
    second = standin.state.create_sale(mid, contract_id=contract_ids[2])["payment"]
    assert second["source"] == "Recurring"
    payments = await client.list_contract_payments(creds, mid, contract_ids[2], limit=10, offset=0)
    assert payments.record_count == 2
    assert payments.records[0].id == second["id"]


# -- traffic generator --------------------------------------------------------------------------


async def test_traffic_generator_against_sink(standin: StandinHandle, client: MxClient) -> None:
    sims = [await provision_merchant(standin, name=f"Clinic {i}", webhook_url="") for i in range(2)]
    for sim in sims:
        sim.webhook_url = f"{standin.control_url}/sink/traffic-{sim.merchant_id}"
    report = await run_traffic(
        standin,
        sims,
        seconds=1.0,
        rate_per_second=60,
        seed=99,
        webhook_url_for=lambda m: m.webhook_url,
        duplicate_rate=0.2,
        reorder_rate=0.2,
        refund_rate=0.1,
        decline_rate=0.1,
    )
    total_events = sum(report.events.values())
    assert total_events == 60
    assert report.posts == total_events + report.duplicates_sent
    assert report.http_status == {200: report.posts}
    assert report.duplicates_sent > 0
    assert report.reordered > 0
    assert report.refunds > 0
    assert report.declines > 0
    json.dumps(report.as_dict())

    received: list[dict[str, Any]] = []
    for sim in sims:
        received.extend(httpx.get(f"{standin.control_url}/sink/traffic-{sim.merchant_id}").json())
    assert len(received) == report.posts
    payment_events = 0
    for hook in received:
        assert all(v is None or isinstance(v, str) for v in hook.values())
        parsed = parse_body(json.dumps(hook).encode())
        assert parsed.problem is None, parsed.problem
        if parsed.payment_id is not None:
            payment_events += 1
            if parsed.event_type == "RefundCreated":
                assert Decimal(hook["totalAmount"]) < 0
    assert payment_events > 0

    # every payment id in a webhook is fetchable with that merchant's key
    sim = sims[0]
    creds = MxCredentials(sim.consumer_key, sim.consumer_secret)
    some = report.payment_ids[sim.merchant_id][:5]
    fetched = await asyncio.gather(*(client.get_payment(creds, sim.merchant_id, p) for p in some))
    assert all(isinstance(p, MxPayment) for p in fetched)

    hook = await webhook_for_payment(standin, some[0])
    assert hook["id"] == str(some[0])


async def test_credentials_route_calls_to_their_environment() -> None:
    """A merchant's credentials carry its environment's API base; the client's own base URL is
    only the fallback, so sandbox and production merchants share one client."""
    with start_standin(seed=1) as production, start_standin(seed=2) as sandbox:
        merchant = sandbox.state.create_merchant(name="Sandbox Clinic")
        sale = sandbox.state.create_sale(merchant["merchant_id"])
        creds = MxCredentials(
            merchant["consumer_key"], merchant["consumer_secret"], base_url=sandbox.base_url
        )
        async with MxClient(production.base_url) as client:
            payment = await client.get_payment(
                creds, merchant["merchant_id"], sale["payment"]["id"]
            )
        assert payment.id == sale["payment"]["id"]
        assert production.state.read_counters()["total"] == 0
