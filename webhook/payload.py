"""The webhook body: parsing, validation (pydantic) and card-number masking.

MX Merchant posts a flat JSON object whose values are all strings; missing values arrive as
``""`` or ``null``; unknown keys are allowed and kept. ``parse_body`` turns raw bytes into what
``private.ingest_webhook`` needs: the (masked) payload, the problem when the body is unusable,
and the raw body text to keep with a rejected event. Masking (``common.masking``) covers every
client value: keys, strings, numbers, the raw body, and merchantId/id unless they are MX ids of
at most 12 digits.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from common.masking import mask_card_numbers, mask_number

PAYMENT_EVENT_TYPES: Final = frozenset({"PaymentSuccess", "PaymentFail", "RefundCreated"})
KNOWN_EVENT_TYPES: Final = PAYMENT_EVENT_TYPES | frozenset(
    {
        "BatchClosed",
        "Deposit",
        "Chargeback",
        "ExpiredCard",
        "NewStatement",
        "UpcomingSAQExpiration",
    }
)
MAX_DEPTH: Final = 32
MAX_EVENT_TYPE_LENGTH: Final = 64
# merchantId: MX merchant ids have 10 digits; at most 12 are accepted (private.ingest_webhook
# checks the same), since 13 to 19 digits may be a card number, which is never kept verbatim.
MAX_MERCHANT_ID_DIGITS: Final = 12
_MERCHANT_ID = re.compile(rf"[0-9]{{1,{MAX_MERCHANT_ID_DIGITS}}}")
# A payment event's id is MX's payment id (16 digits in MX's examples; bigint in the database):
# the one value kept verbatim at any length up to 18 digits, because the worker fetches
# GET /payment/{id} with it. Every other id-like value (the id of a non-payment event) is masked.
_PAYMENT_ID = re.compile(r"[0-9]{1,18}")

EXAMPLE: Final[dict[str, str]] = {
    "eventType": "PaymentSuccess",
    "merchantId": "1000012345",
    "id": "4000012345",
    "invoiceId": "",
    "invoiceNumber": "2636",
    "transactionDate": "Aug 11 2025 10:02AM",
    "localDate": "Aug 11 2025  6:02AM",
    "transactionTypeName": "Sale",
    "paymentType": "Card",
    "card": "Visa",
    "pan4": "4242",
    "totalAmount": "181.12",
    "responseCode": "0",
    "responseMessage": "Approved or completed successfully",
    "customer": "Jane Doe",
    "source": "Recurring",
}


def _problem(template: str, field: str) -> PydanticCustomError:
    return PydanticCustomError("mx_payload", template, {"field": field})


class MxWebhookPayload(BaseModel):
    """An MX Merchant notification body.

    Every MX value is a string. Required: ``eventType`` (non-empty) and ``merchantId``
    (digits); payment events (PaymentSuccess, PaymentFail, RefundCreated) also need ``id``,
    the payment id (digits). Any other key (xmid, dba, invoiceId, invoiceNumber,
    transactionDate, localDate, transactionTypeName, paymentType, card, pan4, totalAmount,
    responseCode, responseMessage, customer, source, ...) is accepted and stored as sent,
    except that any run of 13 or more digits (whatever separates them) is masked to its last
    four, except a payment event's ``id`` (MX's payment id, up to 18 digits). ``merchantId``
    has at most 12 digits: a longer one is refused (and stored masked).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        json_schema_extra=lambda schema: schema.update(examples=[dict(EXAMPLE)]),
    )

    event_type: str = Field(
        alias="eventType",
        description="PaymentSuccess, PaymentFail, RefundCreated, BatchClosed, Deposit, ...",
        examples=["PaymentSuccess"],
    )
    merchant_id: str = Field(
        alias="merchantId",
        pattern=rf"^[0-9]{{1,{MAX_MERCHANT_ID_DIGITS}}}$",
        description="The MX merchant id; must belong to the token in the callback URL.",
        examples=["1000012345"],
    )
    id: str | None = Field(
        default=None,
        validate_default=True,
        description="The payment id (digits); required for payment events.",
        examples=["4000012345"],
    )

    @model_validator(mode="before")
    @classmethod
    def _absent_is_null(cls, data: object) -> object:
        # an absent required key gets the same clear message as "" or null
        if isinstance(data, dict) and ("eventType" not in data or "merchantId" not in data):
            return {"eventType": None, "merchantId": None, **data}
        return data

    @field_validator("event_type", mode="before")
    @classmethod
    def _check_event_type(cls, value: object) -> str:
        if value is None or value == "":
            raise _problem("{field} is missing", "eventType")
        if not isinstance(value, str):
            raise _problem("{field} must be a string", "eventType")
        if not value.strip():
            raise _problem("{field} is blank", "eventType")
        if len(value) > MAX_EVENT_TYPE_LENGTH:
            raise _problem("{field} is longer than 64 characters", "eventType")
        return value

    @field_validator("merchant_id", mode="before")
    @classmethod
    def _check_merchant_id(cls, value: object) -> str:
        return _mx_id(value, "merchantId", _MERCHANT_ID, MAX_MERCHANT_ID_DIGITS) or ""

    @field_validator("id", mode="before")
    @classmethod
    def _check_payment_id(cls, value: object, info: ValidationInfo) -> str | None:
        event_type = info.data.get("event_type")
        if event_type not in PAYMENT_EVENT_TYPES:
            # not a payment event (or eventType itself is wrong): id is free-form
            return value if isinstance(value, str) else None
        if value is None or value == "":
            raise PydanticCustomError(
                "mx_payload",
                "id (payment id) is required for {event_type}",
                {"event_type": event_type},
            )
        return _mx_id(value, "id (payment id)", _PAYMENT_ID, 18)


def _mx_id(value: object, field: str, pattern: re.Pattern[str], digits: int) -> str | None:
    if value is None or value == "":
        raise _problem("{field} is missing", field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise _problem("{field} must be digits", field)
    if not pattern.fullmatch(value):
        raise PydanticCustomError(
            "mx_payload",
            "{field} must be at most {digits} digits",
            {"field": field, "digits": digits},
        )
    return value


@dataclass(frozen=True)
class ParsedBody:
    """What the receiver hands to ``private.ingest_webhook``."""

    payload: dict[str, Any] | None
    """The JSON object with card-like digit runs masked; None when the body is unusable."""
    raw_body: str | None
    """Masked raw body text, kept only when the event is rejected."""
    problem: str | None
    """What is wrong with the body, or None."""
    http_status: int
    """400 (not a JSON object), 422 (fields missing or invalid) or 200."""
    event_type: str | None = None
    mx_merchant_id: str | None = None
    payment_id: str | None = None


class _Unstorable(ValueError):
    """A JSON value Postgres cannot store (NUL, unpaired surrogate, too deep)."""


def _clean_text(text: str) -> str:
    if "\x00" in text:
        raise _Unstorable("body contains a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unstorable("body contains an unpaired UTF-16 surrogate escape") from None
    return mask_card_numbers(text)


def _clean(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Unstorable(f"body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return mask_number(value)
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_clean_text(k): _clean(v, depth + 1) for k, v in value.items()}
    raise _Unstorable(f"unexpected JSON value of type {type(value).__name__}")


def _clean_top(obj: dict[str, Any]) -> dict[str, Any]:
    verbatim = {"merchantId": _MERCHANT_ID}
    event_type = obj.get("eventType")
    if isinstance(event_type, str) and event_type in PAYMENT_EVENT_TYPES:
        verbatim["id"] = _PAYMENT_ID
    cleaned: dict[str, Any] = {}
    for key, value in obj.items():
        pattern = verbatim.get(key)
        if pattern is not None and isinstance(value, str) and pattern.fullmatch(value):
            cleaned[key] = value
        else:
            cleaned[_clean_text(key)] = _clean(value, 1)
    return cleaned


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def raw_text(body: bytes) -> str:
    """The raw body as storable, masked text (undecodable bytes and NUL become U+FFFD)."""
    return mask_card_numbers(body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"))


def _short(value: object, limit: int = 64) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return mask_card_numbers(value.replace("\x00", "\ufffd"))[:limit]


def parse_body(body: bytes) -> ParsedBody:
    """Parse and validate a webhook body; never raises."""

    def bad(problem: str, status: int = 400, payload: dict[str, Any] | None = None) -> ParsedBody:
        event_type = mx_merchant_id = None
        if payload is not None:
            event_type = _short(payload.get("eventType"))
            mx_merchant_id = _short(payload.get("merchantId"), 20)
        return ParsedBody(
            payload=payload,
            raw_body=raw_text(body),
            problem=problem,
            http_status=status,
            event_type=event_type,
            mx_merchant_id=mx_merchant_id,
        )

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return bad("body is not valid UTF-8")
    if not text.strip():
        return bad("body is empty")
    try:
        obj = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return bad(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            reason = "nested too deeply"
        elif "integer string conversion" in str(exc):
            reason = "integer with too many digits"
        else:
            reason = str(exc)
        return bad(f"body is not valid JSON: {reason[:80]}")
    if not isinstance(obj, dict):
        return bad(f"body must be a JSON object, not {_json_kind(obj)}")
    try:
        payload = _clean_top(obj)
    except _Unstorable as exc:
        return bad(str(exc))
    except RecursionError:
        return bad(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        # validate what was sent (messages never echo values); store the masked copy
        model = MxWebhookPayload.model_validate(obj)
    except ValidationError as exc:
        problem = "; ".join(error["msg"] for error in exc.errors())
        return bad(problem, 422, payload)
    return ParsedBody(
        payload=payload,
        raw_body=None,
        problem=None,
        http_status=200,
        event_type=_short(model.event_type),
        mx_merchant_id=model.merchant_id,
        payment_id=model.id if model.event_type in PAYMENT_EVENT_TYPES else None,
    )


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def event_type_label(event_type: str | None) -> str:
    """A bounded metric label: the known MX event types, else ``other``."""
    return event_type if event_type in KNOWN_EVENT_TYPES else "other"
