"""Pydantic models for MX Merchant API responses and webhook payloads.

The models accept the quirks documented in ``/work/shared/mx-merchant-api.md``:

* money arrives as decimal strings with trailing zeros trimmed (``"260"``, ``"181.12"``),
  sometimes as JSON numbers; it is parsed to :class:`~decimal.Decimal`, never ``float``;
* times arrive as ISO-8601 with ``Z`` and 0-3 fractional digits, sometimes without ``Z``
  (then UTC), or in the MX text format ``"Aug 11 2025 10:02AM"`` (two spaces before a
  one-digit hour);
* ids are 64-bit integers that may arrive as strings;
* ``""`` and ``null`` both mean "absent".

Every model keeps the JSON object it was parsed from; :meth:`canonical` returns the JSON-safe
dict the SQL procedures receive, with that original object (card secrets removed) under
``"raw"``.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "MxCardAccount",
    "MxContract",
    "MxErrorBody",
    "MxInvoice",
    "MxInvoiceCustomer",
    "MxInvoicePurchase",
    "MxList",
    "MxMerchant",
    "MxModel",
    "MxPayment",
    "MxPaymentPurchase",
    "MxSubscription",
    "format_mx_text_datetime",
    "money_str",
    "parse_money",
    "parse_mx_date",
    "parse_mx_datetime",
    "parse_mx_local_datetime",
    "redact_card_secrets",
]

# --------------------------------------------------------------------------------------------
# scalar parsers
# --------------------------------------------------------------------------------------------

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# "Aug 11 2025 10:02AM", "Aug 11 2025  6:02AM", tolerate seconds and a space before AM/PM.
_MX_TEXT_RE = re.compile(
    r"^\s*([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])\s*$"
)
_ISO_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
# "/Date(1754906520000)/" (old .NET JSON); rare but cheap to accept.
_DOTNET_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_money(value: Any) -> Decimal | None:
    """Parse an MX money value (``"181.12"``, ``"260"``, ``"-10.5"``, ``12.5``) to ``Decimal``.

    ``""`` and ``None`` give ``None``. Floats are converted through their shortest repr, so
    ``12.1`` becomes ``Decimal("12.1")``, never ``12.0999...``. Raises ``ValueError`` for
    anything that is not a finite number.
    """
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("money must be a number or a decimal string, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if text.startswith("$"):
            text = text[1:]
        elif text.startswith("-$"):
            text = "-" + text[2:]
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
    else:
        raise ValueError(f"not a decimal amount: {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"amount is not finite: {value!r}")
    return result


def money_str(value: Decimal | None) -> str | None:
    """Format a Decimal as a plain decimal string (no exponent), ``None`` stays ``None``."""
    if value is None:
        return None
    return format(value, "f")


def _parse_mx_text(text: str) -> datetime | None:
    m = _MX_TEXT_RE.match(text)
    if m is None:
        return None
    mon, day, year, hour, minute, second, ampm = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        raise ValueError(f"unknown month in MX date: {text!r}")
    h = int(hour)
    if not 1 <= h <= 12:
        raise ValueError(f"hour out of range in MX date: {text!r}")
    h = h % 12 + (12 if ampm.lower() == "pm" else 0)
    return datetime(int(year), month, int(day), h, int(minute), int(second or 0))


def _parse_naive_or_aware(value: Any) -> datetime | None:
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date-time")
    if isinstance(value, int | float):
        # epoch seconds or milliseconds
        seconds = value / 1000 if abs(value) > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {type(value).__name__}")
    text = value.strip()
    mx = _parse_mx_text(text)
    if mx is not None:
        return mx
    m = _DOTNET_RE.match(text)
    if m is not None:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
    iso = text
    if iso.endswith(("z", "Z")):
        iso = iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a recognised MX date-time: {value!r}") from exc


def parse_mx_datetime(value: Any) -> datetime | None:
    """Parse an MX timestamp to an aware UTC ``datetime``.

    Accepts ISO-8601 with or without ``Z``/offset (no offset means UTC) and any number of
    fractional digits, the MX text format ``"Aug 11 2025 10:02AM"`` (taken as UTC), epoch
    numbers, ``datetime`` objects. ``""``/``None`` give ``None``.
    """
    parsed = _parse_naive_or_aware(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_mx_local_datetime(value: Any) -> datetime | None:
    """Parse a merchant-local MX time (webhook ``localDate``) to a *naive* ``datetime``.

    The value carries no offset; combine it with the merchant's ``timezoneOffset`` if the
    absolute instant is needed. An aware input keeps its wall-clock time, offset dropped.
    """
    parsed = _parse_naive_or_aware(value)
    if parsed is None:
        return None
    return parsed.replace(tzinfo=None)


def parse_mx_date(value: Any) -> date | None:
    """Parse an MX date: ``"2025-08-11"``, an ISO date-time (its date part as written),
    ``"Aug 11 2025 10:02AM"``, a ``date``/``datetime``. ``""``/``None`` give ``None``."""
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = _ISO_DATE_RE.match(value)
        if m is not None:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        mx = _parse_mx_text(value.strip())
        if mx is not None:
            return mx.date()
        # "Aug 11 2025" without a time
        m2 = re.match(r"^\s*([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\s*$", value)
        if m2 is not None and m2.group(1).lower() in _MONTHS:
            return date(int(m2.group(3)), _MONTHS[m2.group(1).lower()], int(m2.group(2)))
        # "08/11/2025"
        m3 = re.match(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$", value)
        if m3 is not None:
            return date(int(m3.group(3)), int(m3.group(1)), int(m3.group(2)))
    parsed = _parse_naive_or_aware(value)
    return None if parsed is None else parsed.date()


def format_mx_text_datetime(value: datetime) -> str:
    """Format like the MX webhook (SQL Server style 100): ``"Aug 11 2025 10:02AM"``,
    ``"Aug 11 2025  6:02AM"`` (hour and day space-padded to two characters)."""
    hour12 = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    month = _MONTH_NAMES[value.month - 1]
    return f"{month} {value.day:>2} {value.year} {hour12:>2}:{value.minute:02d}{ampm}"


def _parse_id(value: Any) -> int | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("an id must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"an id must be an integer: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise ValueError(f"an id must be an integer: {value!r}")
    raise ValueError(f"an id must be an integer: {type(value).__name__}")


def _parse_opt_str(value: Any) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string: {type(value).__name__}")


def _parse_opt_bool(value: Any) -> bool | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "y"):
            return True
        if low in ("false", "0", "no", "n"):
            return False
    raise ValueError(f"expected a boolean: {value!r}")


def _parse_id_list(value: Any) -> list[int]:
    if _is_blank(value):
        return []
    if isinstance(value, str):
        items: list[Any] = [p for p in re.split(r"[,\s]+", value) if p]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    out: list[int] = []
    for item in items:
        parsed = _parse_id(item)
        if parsed is not None:
            out.append(parsed)
    return out


def _parse_str_list(value: Any) -> list[str]:
    if _is_blank(value):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if not _is_blank(v)]
    return [str(value)]


def _blank_to_none(value: Any) -> Any:
    return None if _is_blank(value) else value


def _blank_to_list(value: Any) -> Any:
    return [] if _is_blank(value) else value


Money = Annotated[Decimal | None, BeforeValidator(parse_money)]
UtcDateTime = Annotated[datetime | None, BeforeValidator(parse_mx_datetime)]
LocalDateTime = Annotated[datetime | None, BeforeValidator(parse_mx_local_datetime)]
MxDate = Annotated[date | None, BeforeValidator(parse_mx_date)]
MxId = Annotated[int | None, BeforeValidator(_parse_id)]
RequiredId = Annotated[int, BeforeValidator(_parse_id)]
OptStr = Annotated[str | None, BeforeValidator(_parse_opt_str)]
OptInt = Annotated[int | None, BeforeValidator(_parse_id)]
OptBool = Annotated[bool | None, BeforeValidator(_parse_opt_bool)]
IdList = Annotated[list[int], BeforeValidator(_parse_id_list)]
StrList = Annotated[list[str], BeforeValidator(_parse_str_list)]

# --------------------------------------------------------------------------------------------
# redaction
# --------------------------------------------------------------------------------------------

# Keys (lower-cased, without "_" / "-") that may hold a full card number or card secret.
_SECRET_KEYS = frozenset(
    {
        "number",
        "cardnumber",
        "cardno",
        "cardnum",
        "accountnumber",
        "pan",
        "fullpan",
        "primaryaccountnumber",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cid",
        "securitycode",
        "track",
        "track1",
        "track2",
        "trackdata",
        "magstripe",
        "encryptedtrack",
        "pinblock",
    }
)
_CARD_CONTAINERS = frozenset({"cardaccount", "bankaccount", "card", "paymentmethod"})


def _norm_key(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def redact_card_secrets(value: Any, *, _in_card: bool = False) -> Any:
    """Return a deep copy of an MX JSON value without card secrets.

    Drops ``token`` inside ``cardAccount``/``bankAccount`` objects and every key named like a
    full card number or card security value (``number``, ``cardNumber``, ``accountNumber``,
    ``pan``, ``cvv``, ``track2`` ...), at any depth. ``last4``/``pan4`` are kept.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            norm = _norm_key(str(key))
            if norm in _SECRET_KEYS:
                continue
            if _in_card and norm == "token":
                continue
            out[key] = redact_card_secrets(item, _in_card=norm in _CARD_CONTAINERS)
        return out
    if isinstance(value, list):
        return [redact_card_secrets(v) for v in value]
    return copy.copy(value)


# --------------------------------------------------------------------------------------------
# base model
# --------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _iso_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


class MxModel(BaseModel):
    """Base for MX models: camelCase aliases, unknown fields kept, the input JSON kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        arbitrary_types_allowed=False,
    )

    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        obj = handler(data)
        if isinstance(data, dict) and isinstance(obj, MxModel):
            obj._raw = data
        return obj

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object this model was parsed from (not redacted)."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json", by_alias=True)

    def redacted_raw(self) -> dict[str, Any]:
        """The original JSON object with card secrets removed."""
        result = redact_card_secrets(self.raw)
        assert isinstance(result, dict)
        return result

    def canonical(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# payment
# --------------------------------------------------------------------------------------------


class MxCardAccount(MxModel):
    card_type: OptStr = None
    last4: OptStr = None
    token: OptStr = Field(default=None, repr=False)
    expiry_month: OptStr = None
    expiry_year: OptStr = None

    def canonical(self) -> dict[str, Any]:
        return {
            "card_type": self.card_type,
            "last4": self.last4,
            "expiry_month": self.expiry_month,
            "expiry_year": self.expiry_year,
        }


class MxPaymentPurchase(MxModel):
    name: OptStr = None
    unit_price: Money = None
    quantity: Money = None
    tax_amount: Money = None
    extended_amount: Money = None

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit_price": money_str(self.unit_price),
            "quantity": money_str(self.quantity),
            "tax_amount": money_str(self.tax_amount),
            "extended_amount": money_str(self.extended_amount),
        }


class MxPayment(MxModel):
    """``GET /payment/{id}`` (and the records of ``GET /payment``)."""

    id: RequiredId
    merchant_id: MxId = None
    created: UtcDateTime = None
    status: OptStr = None
    type: OptStr = None
    tender_type: OptStr = None
    source: OptStr = None
    amount: Money = None
    tax: Money = None
    surcharge_amount: Money = None
    refunded_amount: Money = None
    settled_amount: Money = None
    currency: OptStr = None
    settled_date: UtcDateTime = None
    auth_code: OptStr = None
    auth_message: OptStr = None
    response_code: OptInt = None
    reference: OptStr = None
    invoice_number: OptStr = Field(default=None, alias="invoice")
    client_reference: OptStr = None
    customer_code: OptStr = None
    customer_name: OptStr = None
    invoice_ids: IdList = Field(default_factory=list)
    original_id: MxId = None
    batch: OptStr = None
    card_account: Annotated[MxCardAccount | None, BeforeValidator(_blank_to_none)] = None
    purchases: Annotated[list[MxPaymentPurchase], BeforeValidator(_blank_to_list)] = Field(
        default_factory=list
    )

    def canonical(self) -> dict[str, Any]:
        card = self.card_account.canonical() if self.card_account is not None else None
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "created": _iso(self.created),
            "status": self.status,
            "type": self.type,
            "tender_type": self.tender_type,
            "source": self.source,
            "amount": money_str(self.amount),
            "tax": money_str(self.tax),
            "surcharge_amount": money_str(self.surcharge_amount),
            "refunded_amount": money_str(self.refunded_amount),
            "settled_amount": money_str(self.settled_amount),
            "currency": self.currency,
            "settled_date": _iso(self.settled_date),
            "auth_code": self.auth_code,
            "auth_message": self.auth_message,
            "response_code": self.response_code,
            "reference": self.reference,
            "invoice_number": self.invoice_number,
            "client_reference": self.client_reference,
            "customer_code": self.customer_code,
            "customer_name": self.customer_name,
            "invoice_ids": list(self.invoice_ids),
            "original_id": self.original_id,
            "batch": self.batch,
            "card": card,
            "purchases": [p.canonical() for p in self.purchases],
            "raw": self.redacted_raw(),
        }


# --------------------------------------------------------------------------------------------
# invoice
# --------------------------------------------------------------------------------------------


class MxInvoiceCustomer(MxModel):
    id: MxId = None
    name: OptStr = None

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


class MxInvoicePurchase(MxModel):
    id: MxId = None
    product_id: MxId = None
    product_name: OptStr = None
    description: OptStr = None
    quantity: Money = None
    quantity_returned: Money = None
    price: Money = None
    sub_total_amount: Money = None
    tax_amount: Money = None
    discount_amount: Money = None
    total_amount: Money = None

    def canonical(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "product_name": self.product_name,
            "description": self.description,
            "quantity": money_str(self.quantity),
            "quantity_returned": money_str(self.quantity_returned),
            "price": money_str(self.price),
            "sub_total_amount": money_str(self.sub_total_amount),
            "tax_amount": money_str(self.tax_amount),
            "discount_amount": money_str(self.discount_amount),
            "total_amount": money_str(self.total_amount),
        }


class MxInvoice(MxModel):
    """``GET /invoice/{id}``."""

    id: RequiredId
    merchant_id: MxId = None
    invoice_number: OptStr = None
    status: OptStr = None
    type: OptStr = None
    source_type: OptStr = None
    receipt_number: OptStr = None
    terms: OptStr = None
    total_amount: Money = None
    sub_total_amount: Money = None
    tax_amount: Money = None
    discount_amount: Money = None
    balance: Money = None
    paid_amount: Money = None
    invoice_date: MxDate = None
    due_date: MxDate = None
    created: UtcDateTime = None
    is_tax_exempt: OptBool = None
    memo: OptStr = None
    customer: Annotated[MxInvoiceCustomer | None, BeforeValidator(_blank_to_none)] = None
    purchases: Annotated[list[MxInvoicePurchase], BeforeValidator(_blank_to_list)] = Field(
        default_factory=list
    )
    payments: Annotated[list[MxPayment], BeforeValidator(_blank_to_list)] = Field(
        default_factory=list
    )

    def canonical(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "invoice_number": self.invoice_number,
            "status": self.status,
            "type": self.type,
            "source_type": self.source_type,
            "receipt_number": self.receipt_number,
            "terms": self.terms,
            "total_amount": money_str(self.total_amount),
            "sub_total_amount": money_str(self.sub_total_amount),
            "tax_amount": money_str(self.tax_amount),
            "discount_amount": money_str(self.discount_amount),
            "balance": money_str(self.balance),
            "paid_amount": money_str(self.paid_amount),
            "invoice_date": _iso_date(self.invoice_date),
            "due_date": _iso_date(self.due_date),
            "created": _iso(self.created),
            "is_tax_exempt": self.is_tax_exempt,
            "memo": self.memo,
            "customer": self.customer.canonical() if self.customer is not None else None,
            "purchases": [p.canonical() for p in self.purchases],
            "raw": self.redacted_raw(),
        }


# --------------------------------------------------------------------------------------------
# contract
# --------------------------------------------------------------------------------------------


class MxContract(MxModel):
    """``GET /contract/{id}`` and the records of ``GET /contract``.

    ``status`` is kept verbatim: ``Active``, ``Inactive``, ``Cancelled``, ``Completed``,
    ``Deleted`` and any value MX invents later.
    """

    id: RequiredId
    subscription_id: MxId = None
    merchant_id: MxId = None
    name: OptStr = None
    customer_name: OptStr = None
    customer_id: MxId = None
    interval: OptStr = None
    every: OptStr = None
    on: OptStr = None
    amount: Money = None
    type: OptStr = None
    status: OptStr = None
    start_date: MxDate = None
    next_bill_date: MxDate = None
    last_invoice_date: MxDate = None
    has_declined_payment: OptBool = None
    currency_code: OptStr = None

    @model_validator(mode="after")
    def _customer_from_nested(self) -> MxContract:
        # Some responses nest the customer: {"customer": {"id": ..., "name": ...}}.
        customer = (self.model_extra or {}).get("customer")
        if isinstance(customer, dict):
            if self.customer_id is None:
                self.customer_id = _parse_id(customer.get("id"))
            if self.customer_name is None:
                self.customer_name = _parse_opt_str(customer.get("name"))
        return self

    def canonical(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscription_id": self.subscription_id,
            "merchant_id": self.merchant_id,
            "name": self.name,
            "customer_name": self.customer_name,
            "customer_id": self.customer_id,
            "interval": self.interval,
            "every": self.every,
            "on": self.on,
            "amount": money_str(self.amount),
            "type": self.type,
            "status": self.status,
            "start_date": _iso_date(self.start_date),
            "next_bill_date": _iso_date(self.next_bill_date),
            "last_invoice_date": _iso_date(self.last_invoice_date),
            "has_declined_payment": self.has_declined_payment,
            "currency_code": self.currency_code,
            "raw": self.redacted_raw(),
        }


# --------------------------------------------------------------------------------------------
# merchant, subscription, errors, pages
# --------------------------------------------------------------------------------------------

_OFFSET_RE = re.compile(r"^\s*([+-])?(\d{1,2})(?::?(\d{2}))?\s*$")


class MxMerchant(MxModel):
    """``GET /merchant/{id}``: the parts the project uses."""

    id: RequiredId
    name: OptStr = None
    dba: OptStr = None
    status: OptStr = None
    timezone_offset: OptStr = None
    daylight_saving: OptBool = None

    def utc_offset(self) -> timedelta | None:
        """``timezoneOffset`` (``"-8:00"``) as a ``timedelta``; ``None`` if absent/unreadable."""
        if self.timezone_offset is None:
            return None
        m = _OFFSET_RE.match(self.timezone_offset)
        if m is None:
            return None
        sign = -1 if m.group(1) == "-" else 1
        return sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))

    def canonical(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "dba": self.dba,
            "status": self.status,
            "timezone_offset": self.timezone_offset,
            "daylight_saving": self.daylight_saving,
            "raw": self.redacted_raw(),
        }


class MxSubscription(MxModel):
    """A webhook subscription (``GET /subscription`` record)."""

    id: MxId = None
    event_type: OptStr = None
    merchant_id: MxId = None
    callback_url: OptStr = None
    sources: OptStr = None
    send_webhook: OptBool = None
    threshold: Money = None

    def canonical(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "merchant_id": self.merchant_id,
            "callback_url": self.callback_url,
            "sources": self.sources,
            "send_webhook": self.send_webhook,
            "threshold": money_str(self.threshold),
            "raw": self.redacted_raw(),
        }


class MxErrorBody(MxModel):
    """``{"errorCode": "ValidationError", "message": "...", "details": [...], ...}``."""

    error_code: OptStr = None
    message: OptStr = None
    details: StrList = Field(default_factory=list)
    response_code: OptStr = None

    def canonical(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": list(self.details),
            "response_code": self.response_code,
        }


T = TypeVar("T", bound=MxModel)


class MxList(MxModel, Generic[T]):
    """A page: ``{"recordCount": N, "records": [...]}`` (``recordCount`` is the total)."""

    record_count: Annotated[int, BeforeValidator(lambda v: _parse_id(v) or 0)] = 0
    records: Annotated[list[T], BeforeValidator(_blank_to_list)] = Field(default_factory=list)

    def canonical(self) -> dict[str, Any]:
        return {
            "record_count": self.record_count,
            "records": [r.canonical() for r in self.records],
        }
