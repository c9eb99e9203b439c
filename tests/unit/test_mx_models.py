"""Unit tests for worker.mx.models: the MX quirks and the canonical dicts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mxstandin.state import StandinState, fmt_money
from webhook.payload import parse_body
from worker.mx.models import (
    MxContract,
    MxErrorBody,
    MxInvoice,
    MxList,
    MxMerchant,
    MxPayment,
    MxSubscription,
)
from worker.mx.parsing import (
    format_mx_text_datetime,
    money_str,
    parse_money,
    parse_mx_date,
    parse_mx_datetime,
    parse_mx_local_datetime,
)
from worker.mx.redaction import redact_card_secrets

PAYMENT_KEYS = {
    "id", "merchant_id", "created", "status", "type", "tender_type", "source", "amount", "tax",
    "surcharge_amount", "refunded_amount", "settled_amount", "currency", "settled_date",
    "auth_code", "auth_message", "response_code", "reference", "invoice_number",
    "client_reference", "customer_code", "customer_name", "invoice_ids", "original_id", "batch",
    "card", "purchases", "raw",
}  # fmt: skip
INVOICE_KEYS = {
    "id", "merchant_id", "invoice_number", "status", "type", "source_type", "receipt_number",
    "terms", "total_amount", "sub_total_amount", "tax_amount", "discount_amount", "balance",
    "paid_amount", "invoice_date", "due_date", "created", "is_tax_exempt", "memo", "customer",
    "purchases", "raw",
}  # fmt: skip
CONTRACT_KEYS = {
    "id", "subscription_id", "merchant_id", "name", "customer_name", "customer_id", "interval",
    "every", "on", "amount", "type", "status", "start_date", "next_bill_date",
    "last_invoice_date", "has_declined_payment", "currency_code", "raw",
}  # fmt: skip

PAYMENT_JSON: dict[str, Any] = {
    "id": 4000000012345678,
    "created": "2025-08-11T10:02:03.12Z",
    "merchantId": "1000012345",
    "status": "Settled",
    "type": "Sale",
    "tenderType": "Card",
    "source": "Recurring",
    "amount": "181.12",
    "tax": "0",
    "surchargeAmount": "",
    "refundedAmount": "0",
    "settledAmount": "181.12",
    "currency": "USD",
    "settledDate": "2025-08-12T03:00:00.5",
    "authCode": "A1B2C3",
    "authMessage": "Approved or completed successfully",
    "responseCode": 0,
    "reference": "523312345678",
    "invoice": "2636",
    "clientReference": "",
    "customerCode": "",
    "customerName": "Jane Doe",
    "invoiceIds": [7100000001],
    "batch": "1701",
    "someNewField": {"x": 1},
    "cardAccount": {
        "cardType": "Visa",
        "last4": "4242",
        "token": "tok_secret",
        "expiryMonth": "12",
        "expiryYear": "2027",
        "number": "4242424242424242",
    },
    "purchases": [
        {
            "name": "Semaglutide 2.5mg",
            "unitPrice": "299",
            "quantity": "1",
            "taxAmount": "0",
            "extendedAmount": "299",
        }
    ],
}


# -- scalar parsers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("181.12", Decimal("181.12")),
        ("260", Decimal("260")),
        ("0", Decimal("0")),
        ("-10.5", Decimal("-10.5")),
        ("-10.00", Decimal("-10.00")),
        (" 12.30 ", Decimal("12.30")),
        (260, Decimal("260")),
        (12.1, Decimal("12.1")),
        (0.1, Decimal("0.1")),
        (Decimal("5.5"), Decimal("5.5")),
        ("", None),
        (None, None),
        ("   ", None),
    ],
)
def test_parse_money(value: Any, expected: Decimal | None) -> None:
    result = parse_money(value)
    assert result == expected
    if result is not None:
        assert isinstance(result, Decimal)


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, [1], "1.2.3"])
def test_parse_money_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_money(value)


@given(st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2))
def test_money_round_trip_through_mx_format(value: Decimal) -> None:
    # the stand-in writes money like MX (trailing zeros trimmed); we read it back exactly
    text = fmt_money(value)
    parsed = parse_money(text)
    assert parsed == value
    assert money_str(parsed) is not None
    assert parse_money(money_str(parsed)) == value
    assert "E" not in (money_str(parsed) or "")


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_money_str_round_trip_any_decimal(value: Decimal) -> None:
    text = money_str(value)
    assert text is not None
    assert "E" not in text.upper()
    assert parse_money(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_money_from_json_number_uses_shortest_repr(value: float) -> None:
    parsed = parse_money(value)
    assert parsed == Decimal(repr(value))
    assert float(parsed or 0) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-08-11T10:02:03Z", datetime(2025, 8, 11, 10, 2, 3, tzinfo=UTC)),
        ("2025-08-11T10:02:03.1Z", datetime(2025, 8, 11, 10, 2, 3, 100000, tzinfo=UTC)),
        ("2025-08-11T10:02:03.12Z", datetime(2025, 8, 11, 10, 2, 3, 120000, tzinfo=UTC)),
        ("2025-08-11T10:02:03.123Z", datetime(2025, 8, 11, 10, 2, 3, 123000, tzinfo=UTC)),
        ("2025-08-11T10:02:03.123", datetime(2025, 8, 11, 10, 2, 3, 123000, tzinfo=UTC)),
        ("2025-08-11T10:02:03", datetime(2025, 8, 11, 10, 2, 3, tzinfo=UTC)),
        ("2025-08-11T03:02:03-07:00", datetime(2025, 8, 11, 10, 2, 3, tzinfo=UTC)),
        ("Aug 11 2025 10:02AM", datetime(2025, 8, 11, 10, 2, tzinfo=UTC)),
        ("Aug 11 2025  6:02AM", datetime(2025, 8, 11, 6, 2, tzinfo=UTC)),
        ("Aug  5 2025 12:15AM", datetime(2025, 8, 5, 0, 15, tzinfo=UTC)),
        ("Aug 11 2025 12:02PM", datetime(2025, 8, 11, 12, 2, tzinfo=UTC)),
        ("Dec 31 2025 11:59PM", datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_parse_mx_datetime(value: Any, expected: datetime | None) -> None:
    result = parse_mx_datetime(value)
    assert result == expected
    if result is not None:
        assert result.utcoffset() == timedelta(0)


def test_parse_mx_datetime_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="date-time"):
        parse_mx_datetime("yesterday-ish")


def test_local_datetime_stays_naive() -> None:
    assert parse_mx_local_datetime("Aug 11 2025  6:02AM") == datetime(2025, 8, 11, 6, 2)
    assert parse_mx_local_datetime("") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-08-11", date(2025, 8, 11)),
        ("2025-08-11T00:00:00", date(2025, 8, 11)),
        ("2025-08-11T23:30:00Z", date(2025, 8, 11)),
        ("Aug 11 2025 10:02AM", date(2025, 8, 11)),
        ("Aug 11 2025", date(2025, 8, 11)),
        ("08/11/2025", date(2025, 8, 11)),
        (date(2025, 8, 11), date(2025, 8, 11)),
        ("", None),
        (None, None),
    ],
)
def test_parse_mx_date(value: Any, expected: date | None) -> None:
    assert parse_mx_date(value) == expected


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_mx_text_format_round_trip(value: datetime) -> None:
    minute = value.replace(second=0, microsecond=0)
    assert parse_mx_datetime(format_mx_text_datetime(minute)) == minute.replace(tzinfo=UTC)


# -- payment ----------------------------------------------------------------------------------


def test_payment_quirks_and_canonical() -> None:
    payment = MxPayment.model_validate(PAYMENT_JSON)
    assert payment.amount == Decimal("181.12")
    assert payment.merchant_id == 1000012345
    assert payment.surcharge_amount is None
    assert payment.customer_code is None
    assert payment.created == datetime(2025, 8, 11, 10, 2, 3, 120000, tzinfo=UTC)
    assert payment.settled_date == datetime(2025, 8, 12, 3, 0, 0, 500000, tzinfo=UTC)
    assert payment.model_extra == {"someNewField": {"x": 1}}

    canon = payment.canonical()
    assert set(canon) == PAYMENT_KEYS
    assert canon["amount"] == "181.12"
    assert canon["tax"] == "0"
    assert canon["created"] == "2025-08-11T10:02:03.120000+00:00"
    assert canon["invoice_number"] == "2636"
    assert canon["invoice_ids"] == [7100000001]
    assert canon["card"] == {
        "card_type": "Visa",
        "last4": "4242",
        "expiry_month": "12",
        "expiry_year": "2027",
    }
    assert canon["purchases"][0]["unit_price"] == "299"
    assert canon["raw"]["someNewField"] == {"x": 1}
    assert "token" not in canon["raw"]["cardAccount"]
    assert "number" not in canon["raw"]["cardAccount"]
    assert canon["raw"]["invoice"] == "2636"
    # JSON-safe, and the secrets are nowhere in it
    text = json.dumps(canon)
    assert "tok_secret" not in text
    assert "4242424242424242" not in text
    # the model itself did not lose the original
    assert payment.raw["cardAccount"]["token"] == "tok_secret"


def test_payment_minimal_and_blank() -> None:
    payment = MxPayment.model_validate(
        {"id": "4000000000000001", "cardAccount": "", "purchases": None, "invoiceIds": None}
    )
    canon = payment.canonical()
    assert canon["id"] == 4000000000000001
    assert canon["invoice_ids"] == []
    assert canon["card"] is None
    assert canon["purchases"] == []
    assert canon["amount"] is None
    assert canon["original_id"] is None


def test_payment_refund_and_decline() -> None:
    refund = MxPayment.model_validate(
        {"id": 2, "type": "Return", "amount": "10.5", "originalId": "1", "responseCode": "0"}
    )
    assert refund.original_id == 1
    assert refund.amount == Decimal("10.5")
    assert refund.response_code == 0
    decline = MxPayment.model_validate(
        {"id": 3, "status": "Declined", "responseCode": 51, "authCode": ""}
    )
    assert decline.status == "Declined"
    assert decline.response_code == 51
    assert decline.auth_code is None


def test_payment_requires_integer_id() -> None:
    with pytest.raises(ValidationError):
        MxPayment.model_validate({"id": "abc"})
    with pytest.raises(ValidationError):
        MxPayment.model_validate({"amount": "1"})
    with pytest.raises(ValidationError):
        MxPayment.model_validate({"id": 1, "amount": "lots"})


# -- invoice, contract, others ----------------------------------------------------------------


def _standin_objects() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    state = StandinState(seed=7)
    merchant = state.create_merchant()
    result = state.create_sale(
        merchant["merchant_id"],
        lines=[
            {"product_name": "Testosterone Cypionate 200mg/ml"},
            {"product_name": "BPC-157 5mg", "quantity": 2},
            {"product_name": "Lab Panel"},
        ],
        contract={"interval": "Monthly", "every": "1 Month"},
        source="QuickPay",
    )
    return result["payment"], result["invoice"], result["contract"]


def test_invoice_from_standin_every_line_in_order() -> None:
    _, invoice_json, _ = _standin_objects()
    assert isinstance(invoice_json["invoiceNumber"], int)
    invoice = MxInvoice.model_validate(invoice_json)
    canon = invoice.canonical()
    assert set(canon) == INVOICE_KEYS
    assert canon["invoice_number"] == str(invoice_json["invoiceNumber"])
    assert [p["product_name"] for p in canon["purchases"]] == [
        "Testosterone Cypionate 200mg/ml",
        "BPC-157 5mg",
        "Lab Panel",
    ]
    assert canon["purchases"][1]["quantity"] == "2"
    assert canon["purchases"][1]["total_amount"] == "259.98"
    assert canon["total_amount"] == "590.1"  # 149 + 2*129.99 + 181.12, trimmed like MX
    assert canon["customer"]["id"] == invoice_json["customer"]["id"]
    assert canon["invoice_date"] is not None
    assert len(canon["invoice_date"]) == 10
    assert len(invoice.payments) == 1
    assert isinstance(invoice.payments[0], MxPayment)
    assert "token" not in json.dumps(canon["raw"])


def test_contract_from_standin_and_unknown_status() -> None:
    _, _, contract_json = _standin_objects()
    contract = MxContract.model_validate(contract_json)
    canon = contract.canonical()
    assert set(canon) == CONTRACT_KEYS
    assert canon["status"] == "Active"
    assert canon["interval"] == "Monthly"
    assert canon["customer_id"] == contract_json["customer"]["id"]
    assert canon["next_bill_date"] is not None
    odd = MxContract.model_validate(
        {
            "id": "9",
            "status": "Suspended",
            "amount": 260,
            "nextBillDate": "",
            "hasDeclinedPayment": "false",
        }
    )
    assert odd.canonical()["status"] == "Suspended"
    assert odd.canonical()["amount"] == "260"
    assert odd.next_bill_date is None
    assert odd.has_declined_payment is False


def test_payment_from_standin_parses() -> None:
    payment_json, _, _ = _standin_objects()
    canon = MxPayment.model_validate(payment_json).canonical()
    assert canon["invoice_ids"]
    assert canon["created"].endswith("+00:00")
    json.dumps(canon)


def test_list_page_and_error_body() -> None:
    page = MxList[MxPayment].model_validate(
        {"recordCount": "2", "records": [{"id": 1}, {"id": "2", "amount": "1"}]}
    )
    assert page.record_count == 2
    assert [r.id for r in page.records] == [1, 2]
    empty = MxList[MxContract].model_validate({"recordCount": 0, "records": None})
    assert empty.records == []
    err = MxErrorBody.model_validate(
        {"errorCode": "ValidationError", "message": "bad", "details": "Duplicate notification"}
    )
    assert err.details == ["Duplicate notification"]
    assert err.error_code == "ValidationError"


def test_merchant_offset_and_subscription() -> None:
    merchant = MxMerchant.model_validate(
        {"id": 5, "timezoneOffset": "-8:00", "daylightSaving": True, "name": "Clinic"}
    )
    assert merchant.utc_offset() == timedelta(hours=-8)
    assert MxMerchant.model_validate({"id": 5, "timezoneOffset": "5:30"}).utc_offset() == (
        timedelta(hours=5, minutes=30)
    )
    sub = MxSubscription.model_validate(
        {"id": 1, "eventType": "PaymentSuccess", "merchantId": 5, "threshold": "0"}
    )
    assert sub.canonical()["threshold"] == "0"


def test_redaction_keeps_look_alike_keys() -> None:
    data = {
        "invoiceNumber": "1",
        "phoneNumber": "555",
        "cardNumber": "4111111111111111",
        "bankAccount": {"accountNumber": "123", "routingNumber": "021", "token": "t"},
        "nested": [{"pan": "4111", "last4": "1111", "cvv": "123"}],
    }
    out = redact_card_secrets(data)
    assert out == {
        "invoiceNumber": "1",
        "phoneNumber": "555",
        "bankAccount": {"routingNumber": "021"},
        "nested": [{"last4": "1111"}],
    }
    assert data["cardNumber"] == "4111111111111111"  # input untouched


# -- the stand-in's webhooks -----------------------------------------------------------------
# The webhook's own model (webhook/payload.py) validates bodies; here: the stand-in sends
# what MX sends, and its dates parse the way the models parse MX dates.


def test_standin_webhook_payloads_are_mx_shaped() -> None:
    state = StandinState(seed=3)
    merchant = state.create_merchant(timezone_offset="-5:00")
    sale = state.create_sale(merchant["merchant_id"])
    declined = state.create_sale(merchant["merchant_id"], declined=True)
    refund = state.create_refund(sale["payment"]["id"], amount="10")
    for result, event in [
        (sale, "PaymentSuccess"),
        (declined, "PaymentFail"),
        (refund, "RefundCreated"),
    ]:
        hook = result["webhook"]
        assert all(isinstance(v, str) for v in hook.values())
        parsed = parse_body(json.dumps(hook).encode())
        assert parsed.problem is None
        assert (parsed.event_type, parsed.payment_id) == (event, str(result["payment"]["id"]))
        utc = parse_mx_datetime(hook["transactionDate"])
        local = parse_mx_local_datetime(hook["localDate"])
        assert utc is not None
        assert local is not None
        assert local == (utc - timedelta(hours=5)).replace(tzinfo=None)
    assert refund["webhook"]["totalAmount"] == "-10.00"
    assert declined["webhook"]["responseCode"] != "0"
