"""Pydantic models for MX Merchant API responses and webhook payloads.

Scalars go through :mod:`worker.mx.parsing` (money, times, ids, blanks). Every model keeps the
JSON object it was parsed from; :meth:`MxModel.canonical` returns the JSON-safe dict the SQL
procedures receive, with that original object (card secrets removed by
:mod:`worker.mx.redaction`) under ``"raw"``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
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

from worker.mx.parsing import (
    IdList,
    Money,
    MxDate,
    MxId,
    OptBool,
    OptInt,
    OptStr,
    RequiredId,
    StrList,
    UtcDateTime,
    blank_to_list,
    blank_to_none,
    money_str,
    parse_id,
    parse_opt_str,
    parse_reference_id,
)
from worker.mx.redaction import redact_card_secrets

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
]

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
    card_account: Annotated[MxCardAccount | None, BeforeValidator(blank_to_none)] = None
    purchases: Annotated[list[MxPaymentPurchase], BeforeValidator(blank_to_list)] = Field(
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
    customer: Annotated[MxInvoiceCustomer | None, BeforeValidator(blank_to_none)] = None
    purchases: Annotated[list[MxInvoicePurchase], BeforeValidator(blank_to_list)] = Field(
        default_factory=list
    )
    payments: Annotated[list[MxPayment], BeforeValidator(blank_to_list)] = Field(
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
                self.customer_id = parse_reference_id(customer.get("id"))
            if self.customer_name is None:
                self.customer_name = parse_opt_str(customer.get("name"))
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

    record_count: Annotated[int, BeforeValidator(lambda v: parse_id(v) or 0)] = 0
    records: Annotated[list[T], BeforeValidator(blank_to_list)] = Field(default_factory=list)

    def canonical(self) -> dict[str, Any]:
        return {
            "record_count": self.record_count,
            "records": [r.canonical() for r in self.records],
        }
