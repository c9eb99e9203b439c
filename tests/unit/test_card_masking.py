"""Card-number masking (issue 12, item 6): any 13-19 digit run, whatever separates the digits,
wherever a client value is stored or logged: the webhook payload, the worker's MX JSON, logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from common.logs import JsonFormatter
from common.masking import mask_card_numbers
from webhook.payload import parse_body
from worker.mx.redaction import redact_card_secrets

CARD = "4111111111111111"


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",  # dots
        "4111\u20131111\u20131111\u20131111",  # en dashes
        "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
        "4111\u202f1111\u202f1111\u202f1111",  # narrow no-break spaces
        "4111_1111_1111_1111",  # underscores
        "4111 - 1111 - 1111 - 1111",  # a few separators at once
        "4111/1111/1111/1111",
    ],
)
def test_every_separator_is_seen_through(text: str) -> None:
    masked = mask_card_numbers(f"card {text} ok")
    assert masked == "card ************1111 ok"


@pytest.mark.parametrize("digits", [13, 15, 16, 19])
def test_13_to_19_digit_runs_keep_only_the_last_four(digits: int) -> None:
    value = "4" * (digits - 4) + "1234"
    assert mask_card_numbers(value) == "*" * (digits - 4) + "1234"


@pytest.mark.parametrize(
    "text",
    [
        "Aug 11 2025 10:02AM",
        "2026-11-30T23:13:16.123+00:00",
        "181.12",
        "123456789012",  # 12 digits: an MX id, not a card
        "call 555-123-4567",
    ],
)
def test_ordinary_values_are_untouched(text: str) -> None:
    assert mask_card_numbers(text) == text


def _payload(**fields: object) -> bytes:
    body = {"eventType": "Deposit", "merchantId": "1000012345", **fields}
    return json.dumps(body).encode()


def test_webhook_masks_ids_that_are_not_mx_ids() -> None:
    # the id of a non-payment event is not a payment id: masked like any value
    parsed = parse_body(_payload(id=CARD, note="4111.1111.1111.1111"))
    assert parsed.payload is not None
    assert parsed.payload["id"] == "************1111"
    assert parsed.payload["note"] == "************1111"
    # a merchantId of 13+ digits is refused (422) and stored masked
    parsed = parse_body(_payload(merchantId="4111\u00a01111\u00a01111\u00a01111"))
    assert parsed.http_status == 422
    assert parsed.payload is not None
    assert parsed.payload["merchantId"] == "************1111"
    assert CARD not in json.dumps(parsed.payload)
    parsed = parse_body(_payload(merchantId=CARD))
    assert parsed.http_status == 422
    assert parsed.problem == "merchantId must be at most 12 digits"
    assert parsed.mx_merchant_id == "************1111"
    # the raw body of a rejected request is masked too
    parsed = parse_body(b"not json 4111_1111_1111_1111")
    assert parsed.raw_body == "not json ************1111"


def test_a_payment_events_id_is_mx_payment_id_and_kept() -> None:
    parsed = parse_body(
        json.dumps(
            {"eventType": "PaymentSuccess", "merchantId": "1000012345", "id": "4000000012345678"}
        ).encode()
    )
    assert parsed.http_status == 200
    assert parsed.payment_id == "4000000012345678"


def test_worker_redaction_masks_card_numbers_in_any_value() -> None:
    raw = {
        "id": 4000012345,
        "customerName": "Pat 4111\u20131111\u20131111\u20131111",
        "memo": ["card 4111.1111.1111.1111"],
        "bigNumber": int(CARD),
        "cardAccount": {"last4": "1111", "number": CARD},
    }
    out = redact_card_secrets(raw)
    assert out == {
        "id": 4000012345,
        "customerName": "Pat ************1111",
        "memo": ["card ************1111"],
        "bigNumber": "************1111",
        "cardAccount": {"last4": "1111"},
    }
    assert CARD not in json.dumps(out)


def test_log_lines_never_carry_a_card_number() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "paid with 4111 1111 1111 1111",
            extra={
                "fields": {
                    "payment_id": "4111_1111_1111_1111",
                    "nested": {"k": ["x 4111.1111.1111.1111"], CARD: 1},
                    "number": int(CARD),
                    "event_id": 42,
                }
            },
        )
        try:
            raise ValueError(f"bad {CARD}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "1111111111" not in text.replace("*", "")
    assert CARD not in text
    first = json.loads(text.splitlines()[0])
    assert first["msg"] == "paid with ************1111"
    assert first["payment_id"] == "************1111"
    assert first["event_id"] == 42
