"""The memberships page's query string: parsed and checked here, so a bad value is a 400 with
the reason (never a 500), and turned back into links that keep every filter."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

STATUSES = ("active", "past_due", "paused", "canceled")
FULFILMENTS = ("in_office", "mail_out")
SORTS = ("name", "started_on", "last_paid_at")
PAGE_SIZES = (25, 50, 100)
MAX_SEARCH = 100

COLUMNS: dict[str, str] = {
    "patient": "Patient",
    "programme": "Programme",
    "products": "Product(s)",
    "amount": "Amount",
    "status": "Status",
    "started": "Started",
    "last_paid": "Last paid",
    "next_billing": "Next billing",
    "google_review": "Google review",
    "referral": "Referral",
    "fulfillment": "Fulfilment",
    "notes": "Notes",
}
DEFAULT_COLUMNS = tuple(COLUMNS)  # every column until the user chooses


class BadQuery(ValueError):
    """The reasons a query string was refused (shown on the 400 page)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class MembershipQuery:
    tab: str = "all"  # all | cancellations | a programme id
    status: tuple[str, ...] = ()
    review: bool | None = None
    referral: str | None = None
    fulfillment: str | None = None
    started_from: dt.date | None = None
    started_to: dt.date | None = None
    paid_from: dt.date | None = None
    paid_to: dt.date | None = None
    q: str = ""
    sort: str = "name"
    direction: str = "asc"
    after: dict[str, Any] | None = None
    limit: int = 50
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def programme_id(self) -> str | None:
        return None if self.tab in ("all", "cancellations") else self.tab

    @property
    def filtered(self) -> bool:
        return bool(
            self.status
            or self.review is not None
            or self.referral
            or self.fulfillment
            or self.started_from
            or self.started_to
            or self.paid_from
            or self.paid_to
            or self.q
        )

    def api_args(self) -> dict[str, Any]:
        """Named arguments of api.list_memberships / api.export_memberships_csv."""
        return {
            "p_tab": self.tab,
            "p_status": list(self.status) or None,
            "p_google_review": self.review,
            "p_referral_source": self.referral,
            "p_fulfillment": self.fulfillment,
            "p_started_from": self.started_from,
            "p_started_to": self.started_to,
            "p_search": self.q or None,
            "p_sort": f"{self.sort}.{self.direction}",
            "p_last_paid_from": self.paid_from,
            "p_last_paid_to": self.paid_to,
        }

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters (for links), with ``changes`` applied; a new filter starts at the
        first page unless ``after`` is given."""
        query = replace(self, **({"after": None} | changes))
        out: list[tuple[str, str]] = []
        if query.tab != "all":
            out.append(("tab", query.tab))
        out += [("status", s) for s in query.status]
        if query.review is not None:
            out.append(("review", "yes" if query.review else "no"))
        for name in ("referral", "fulfillment"):
            if getattr(query, name):
                out.append((name, getattr(query, name)))
        for name in ("started_from", "started_to", "paid_from", "paid_to"):
            if getattr(query, name):
                out.append((name, getattr(query, name).isoformat()))
        if query.q:
            out.append(("q", query.q))
        if (query.sort, query.direction) != ("name", "asc"):
            out.append(("sort", f"{query.sort}.{query.direction}"))
        if query.limit != 50:
            out.append(("limit", str(query.limit)))
        if query.after is not None:
            out.append(("after", encode_cursor(query.after)))
        return out

    def url(self, base: str, **changes: Any) -> str:
        params = self.params(**changes)
        return base + ("?" + urlencode(params) if params else "")


def encode_cursor(cursor: Mapping[str, Any]) -> str:
    raw = json.dumps(cursor, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Any:
    """``encode_cursor`` undone (raises ValueError or binascii.Error on anything else)."""
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def _decode_cursor(value: str) -> dict[str, Any]:
    try:
        cursor = decode_cursor(value)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("after is not a page cursor") from exc
    if not isinstance(cursor, dict) or set(cursor) != {"k", "id"}:
        raise ValueError("after is not a page cursor")
    uuid.UUID(str(cursor["id"]))
    if cursor["k"] is not None and not isinstance(cursor["k"], str):
        raise ValueError("after is not a page cursor")
    return cursor


def reader(
    params: Mapping[str, Sequence[str]], known: set[str], reasons: list[str]
) -> Callable[[str], str]:
    """Checks the parameter names; returns a reader of one parameter's value (stripped)."""
    unknown = sorted(set(params) - known)
    if unknown:
        reasons.append(f"unknown parameter(s): {', '.join(unknown)[:200]}")

    def one(name: str) -> str:
        values = params.get(name) or []
        if len(values) > 1:
            reasons.append(f"{name} is given more than once")
        return (values[-1] if values else "").strip()

    return one


def parse_date(name: str, value: str, reasons: list[str]) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        reasons.append(f"{name} must be a date (YYYY-MM-DD), not {value[:40]!r}")
        return None


def parse_search(value: str, reasons: list[str]) -> str:
    if len(value) > MAX_SEARCH:
        reasons.append(f"the search is longer than {MAX_SEARCH} characters")
    return value


def parse_limit(value: str, default: int, reasons: list[str]) -> int:
    if not value:
        return default
    if value.isdigit() and int(value) in PAGE_SIZES:
        return int(value)
    reasons.append(f"limit must be one of {', '.join(map(str, PAGE_SIZES))}")
    return default


def parse_query(params: Mapping[str, Sequence[str]], default_limit: int = 50) -> MembershipQuery:
    """Parse the memberships query string; raises BadQuery with every reason at once."""
    reasons: list[str] = []
    known = {
        "tab",
        "status",
        "review",
        "referral",
        "fulfillment",
        "started_from",
        "started_to",
        "paid_from",
        "paid_to",
        "q",
        "sort",
        "after",
        "limit",
    }
    one = reader(params, known, reasons)
    tab = one("tab") or "all"
    if tab not in ("all", "cancellations"):
        try:
            tab = str(uuid.UUID(tab))
        except ValueError:
            reasons.append("tab must be all, cancellations or a programme id")
    status = tuple(s for s in (v.strip() for v in params.get("status", [])) if s)
    bad = [s for s in status if s not in STATUSES]
    if bad:
        reasons.append(f"status must be one of {', '.join(STATUSES)}")
    review_text = one("review")
    review: bool | None = None
    if review_text in ("yes", "no"):
        review = review_text == "yes"
    elif review_text:
        reasons.append("review must be yes or no")
    referral = one("referral") or None
    if referral is not None and len(referral) > 64:
        reasons.append("referral is too long")
    fulfillment = one("fulfillment") or None
    if fulfillment is not None and fulfillment not in FULFILMENTS:
        reasons.append("fulfillment must be in_office or mail_out")
    dates = {
        name: parse_date(name, one(name), reasons)
        for name in ("started_from", "started_to", "paid_from", "paid_to")
    }
    for low, high in (("started_from", "started_to"), ("paid_from", "paid_to")):
        lo, hi = dates[low], dates[high]
        if lo and hi and lo > hi:
            reasons.append(f"{low} must not be after {high}")
    q = parse_search(one("q"), reasons)
    sort_text = one("sort") or "name.asc"
    sort, _, direction = sort_text.partition(".")
    direction = direction or "asc"
    if sort not in SORTS or direction not in ("asc", "desc"):
        reasons.append("sort must be name, started_on or last_paid_at, then .asc or .desc")
    after_text = one("after")
    after = None
    if after_text:
        try:
            after = _decode_cursor(after_text)
        except ValueError:
            reasons.append("after is not a page cursor")
    limit = parse_limit(one("limit"), default_limit, reasons)
    if reasons:
        raise BadQuery(reasons)
    return MembershipQuery(
        tab=tab,
        status=status,
        review=review,
        referral=referral,
        fulfillment=fulfillment,
        started_from=dates["started_from"],
        started_to=dates["started_to"],
        paid_from=dates["paid_from"],
        paid_to=dates["paid_to"],
        q=q,
        sort=sort,
        direction=direction,
        after=after,
        limit=limit,
    )
