"""The payments and contracts pages' query strings: parsed and checked here, so a bad value is
a 400 with every reason (never a 500), and turned back into links that keep every filter."""

from __future__ import annotations

import binascii
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from dashboard.query import (
    BadQuery,
    decode_cursor,
    encode_cursor,
    parse_date,
    parse_limit,
    parse_search,
    reader,
)

KINDS = ("sale", "refund", "decline", "other")  # private.payment_filter_sql defines each
VIEWS = ("all", "recurring")
MAX_TEXT = 64  # a status or source is MX's own word: any value, this long at most
# What MX is known to send; the filters also offer what the practice's data holds, and accept
# any other value (MX adds statuses and sources without notice).
KNOWN_PAYMENT_STATUSES = ("Approved", "Settled", "Declined", "Voided")
KNOWN_SOURCES = ("Recurring", "QuickPay", "Terminal", "Invoice", "Order", "API", "Customer")
KNOWN_CONTRACT_STATUSES = ("Active", "Inactive", "Cancelled", "Completed", "Deleted")


def _text(name: str, value: str, reasons: list[str]) -> str | None:
    if len(value) > MAX_TEXT:
        reasons.append(f"{name} is longer than {MAX_TEXT} characters")
    return value or None


@dataclass(frozen=True)
class PaymentQuery:
    view: str = "all"  # all | recurring (the old transactions page's Recurring tab)
    kind: str | None = None
    status: str | None = None
    source: str | None = None
    programme: str | None = None  # a programme (category) id
    invoice: bool | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""
    after: dict[str, Any] | None = None
    limit: int = 50

    @property
    def filtered(self) -> bool:
        return bool(
            self.kind
            or self.status
            or self.source
            or self.programme
            or self.invoice is not None
            or self.date_from
            or self.date_to
            or self.q
        )

    def api_args(self) -> dict[str, Any]:
        """Named arguments of api.list_payments / payment_totals / export_payments_csv."""
        return {
            "p_kind": self.kind,
            "p_status": self.status,
            "p_source": self.source,
            "p_category_id": self.programme,
            "p_has_invoice": self.invoice,
            "p_from": self.date_from,
            "p_to": self.date_to,
            "p_search": self.q or None,
            "p_recurring": True if self.view == "recurring" else None,
        }

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters (for links) with ``changes``; a new filter starts at page one."""
        query = replace(self, **({"after": None} | changes))
        out: list[tuple[str, str]] = []
        if query.view != "all":
            out.append(("view", query.view))
        for name in ("kind", "status", "source", "programme"):
            if getattr(query, name):
                out.append((name, getattr(query, name)))
        if query.invoice is not None:
            out.append(("invoice", "yes" if query.invoice else "no"))
        if query.date_from:
            out.append(("from", query.date_from.isoformat()))
        if query.date_to:
            out.append(("to", query.date_to.isoformat()))
        if query.q:
            out.append(("q", query.q))
        if query.limit != 50:
            out.append(("limit", str(query.limit)))
        if query.after is not None:
            out.append(("after", encode_cursor(query.after)))
        return out

    def url(self, base: str, **changes: Any) -> str:
        params = self.params(**changes)
        return base + ("?" + urlencode(params) if params else "")


def _payment_cursor(value: str) -> dict[str, Any]:
    """A cursor of api.list_payments: {"t": the row's time, "id": its MX id}."""
    try:
        cursor = decode_cursor(value)
        if not isinstance(cursor, dict) or set(cursor) != {"t", "id"}:
            raise ValueError("not a cursor")
        dt.datetime.fromisoformat(str(cursor["t"]))
        if not isinstance(cursor["id"], int):
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("after is not a page cursor") from exc
    return cursor


def parse_payment_query(
    params: Mapping[str, Sequence[str]], default_limit: int = 50
) -> PaymentQuery:
    """Parse the payments query string; raises BadQuery with every reason at once."""
    reasons: list[str] = []
    known = {"view", "kind", "status", "source", "programme", "invoice", "from", "to", "q"}
    one = reader(params, known | {"after", "limit"}, reasons)
    view = one("view") or "all"
    if view not in VIEWS:
        reasons.append("view must be all or recurring")
    kind = one("kind") or None
    if kind is not None and kind not in KINDS:
        reasons.append(f"kind must be one of {', '.join(KINDS)}")
    status = _text("status", one("status"), reasons)
    source = _text("source", one("source"), reasons)
    programme = one("programme") or None
    if programme is not None:
        try:
            programme = str(uuid.UUID(programme))
        except ValueError:
            reasons.append("programme must be a programme id")
    invoice_text = one("invoice")
    invoice: bool | None = None
    if invoice_text in ("yes", "no"):
        invoice = invoice_text == "yes"
    elif invoice_text:
        reasons.append("invoice must be yes or no")
    date_from = parse_date("from", one("from"), reasons)
    date_to = parse_date("to", one("to"), reasons)
    if date_from and date_to and date_from > date_to:
        reasons.append("from must not be after to")
    q = parse_search(one("q"), reasons)
    after_text = one("after")
    after = None
    if after_text:
        try:
            after = _payment_cursor(after_text)
        except ValueError:
            reasons.append("after is not a page cursor")
    limit = parse_limit(one("limit"), default_limit, reasons)
    if reasons:
        raise BadQuery(reasons)
    return PaymentQuery(
        view=view,
        kind=kind,
        status=status,
        source=source,
        programme=programme,
        invoice=invoice,
        date_from=date_from,
        date_to=date_to,
        q=q,
        after=after,
        limit=limit,
    )


@dataclass(frozen=True)
class ContractQuery:
    status: str | None = None  # MX's status text, whatever it is
    patient: str | None = None  # a patient id (the link from a patient's page)
    q: str = ""  # customer name or contract number
    after: int | None = None  # keyset: contracts with a smaller id (newest first)
    limit: int = 50

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.patient or self.q)

    def url(self, base: str, **changes: Any) -> str:
        query = replace(self, **({"after": None} | changes))
        out: list[tuple[str, str]] = []
        for name in ("status", "patient", "q"):
            if getattr(query, name):
                out.append((name, getattr(query, name)))
        if query.limit != 50:
            out.append(("limit", str(query.limit)))
        if query.after is not None:
            out.append(("after", str(query.after)))
        return base + ("?" + urlencode(out) if out else "")


def parse_contract_query(
    params: Mapping[str, Sequence[str]], default_limit: int = 50
) -> ContractQuery:
    """Parse the contracts query string; raises BadQuery with every reason at once."""
    reasons: list[str] = []
    one = reader(params, {"status", "patient", "q", "after", "limit"}, reasons)
    status = _text("status", one("status"), reasons)
    patient = one("patient") or None
    if patient is not None:
        try:
            patient = str(uuid.UUID(patient))
        except ValueError:
            reasons.append("patient must be a patient id")
    q = parse_search(one("q"), reasons)
    after_text = one("after")
    after = None
    if after_text:
        if after_text.isdigit() and len(after_text) <= 18:
            after = int(after_text)
        else:
            reasons.append("after is not a page cursor")
    limit = parse_limit(one("limit"), default_limit, reasons)
    if reasons:
        raise BadQuery(reasons)
    return ContractQuery(status=status, patient=patient, q=q, after=after, limit=limit)
