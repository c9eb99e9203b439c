"""Issue 12, item 11: in every MX model, an id field that is 0, "0", "", null or missing
means "none" (a reference MX writes as 0 or "" must never become a foreign key to nothing).

The id fields are found from the models themselves (every field parsed by the reference-id,
required-id or id-list parser), so a field added later is covered without being listed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from worker.mx.models import (
    MxContract,
    MxInvoice,
    MxInvoiceCustomer,
    MxInvoicePurchase,
    MxMerchant,
    MxPayment,
    MxSubscription,
)
from worker.mx.parsing import parse_reference_id, parse_required_id

MODELS: list[type[BaseModel]] = [
    MxPayment,
    MxInvoice,
    MxInvoiceCustomer,
    MxInvoicePurchase,
    MxContract,
    MxMerchant,
    MxSubscription,
]
NONE_VALUES: list[Any] = [0, "0", " 0 ", "", "  ", None, 0.0, "+0", "-0"]


def _parser(field_info: Any) -> str | None:
    for meta in field_info.metadata:
        func = getattr(meta, "func", None)
        if func is parse_reference_id:
            return "reference"
        if func is parse_required_id:
            return "required"
        if getattr(func, "__name__", "") == "_parse_id_list":
            return "list"
    return None


ID_FIELDS: list[tuple[type[BaseModel], str, str, str]] = [
    (model, name, info.alias or name, kind)
    for model in MODELS
    for name, info in model.model_fields.items()
    if (kind := _parser(info)) is not None
]


def _base(model: type[BaseModel]) -> dict[str, Any]:
    """A valid body: every required id set to a real id."""
    return {
        info.alias or name: 4000000012345678
        for name, info in model.model_fields.items()
        if _parser(info) == "required"
    }


def test_every_model_id_field_is_covered() -> None:
    found = {(m.__name__, name) for m, name, _, _ in ID_FIELDS}
    # the fields the pipeline follows must be among them (the check is not vacuous)
    assert {
        ("MxPayment", "id"),
        ("MxPayment", "original_id"),
        ("MxPayment", "invoice_ids"),
        ("MxPayment", "merchant_id"),
        ("MxInvoice", "id"),
        ("MxInvoiceCustomer", "id"),
        ("MxInvoicePurchase", "product_id"),
        ("MxContract", "customer_id"),
    } <= found


@given(
    field=st.sampled_from(ID_FIELDS),
    none=st.sampled_from([*NONE_VALUES, "missing"]),
    real=st.integers(min_value=1, max_value=2**63 - 1),
    as_text=st.booleans(),
)
def test_an_id_that_is_none_in_any_spelling_means_none(
    field: tuple[type[BaseModel], str, str, str], none: Any, real: int, as_text: bool
) -> None:
    model, name, alias, kind = field
    body = _base(model)
    if kind == "list":
        # a list keeps its real ids and drops the ones that mean none, in any position
        spelled: Any = str(real) if as_text else real
        if none == "missing":
            body.pop(alias, None)
            assert getattr(model.model_validate(body), name) == []
            return
        body[alias] = [none, spelled, none]
        assert getattr(model.model_validate(body), name) == [real]
        return
    if none == "missing":
        body.pop(alias, None)
    else:
        body[alias] = none
    if kind == "required":
        with pytest.raises(ValidationError):
            model.model_validate(body)
    else:
        assert getattr(model.model_validate(body), name) is None
    # and a real id, as a number or as text, is kept as it is
    body[alias] = str(real) if as_text else real
    assert getattr(model.model_validate(body), name) == real


@given(none=st.sampled_from([*NONE_VALUES, "missing"]))
def test_canonical_payment_carries_no_reference_to_nothing(none: Any) -> None:
    body: dict[str, Any] = {"id": "4000000012345678", "invoiceIds": [7100000001]}
    if none != "missing":
        body["originalId"] = none
        body["invoiceIds"] = [none, 7100000001, none]
    canon = MxPayment.model_validate(body).canonical()
    assert canon["original_id"] is None
    assert canon["invoice_ids"] == [7100000001]


@given(none=st.sampled_from(NONE_VALUES))
def test_invoice_customer_id_zero_is_no_customer(none: Any) -> None:
    invoice = MxInvoice.model_validate({"id": 7100000001, "customer": {"id": none, "name": "Pat"}})
    assert invoice.canonical()["customer"] == {"id": None, "name": "Pat"}
    contract = MxContract.model_validate({"id": 880001, "customer": {"id": none, "name": "Pat"}})
    assert contract.customer_id is None
