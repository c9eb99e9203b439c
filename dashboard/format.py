"""Jinja filters: money as money, dates and times in the practice's time zone."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup

INTERVALS = {
    "monthly": "month",
    "weekly": "week",
    "yearly": "year",
    "annually": "year",
    "quarterly": "quarter",
    "daily": "day",
    "biweekly": "2 weeks",
    "bimonthly": "2 months",
}
LABELS = {
    "active": "Active",
    "past_due": "Past due",
    "paused": "Paused",
    "canceled": "Canceled",
    "in_office": "In office",
    "mail_out": "Mail out",
    "payment": "payment",
    "contract": "MX contract",
    "staff": "staff",
    "system": "overdue check",
    "pending": "Pending",
    "yes": "Yes",
    "no": "No",
}


@functools.lru_cache(maxsize=64)
def zone(name: str | None) -> dt.tzinfo:
    """The time zone of that name (UTC when unknown); cached: every row's dates ask."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def per_interval(amount: Any, interval: str | None) -> str:
    if amount is None:
        return "—"
    if not interval:
        return money(amount)
    unit = INTERVALS.get(interval.lower(), interval.lower())
    return f"{money(amount)} / {unit}"


def date(value: Any, tz: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = value.astimezone(zone(tz)).date()
    return f"{value:%b} {value.day}, {value.year}"


def datetime(value: Any, tz: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return date(value, tz)
    local = value.astimezone(zone(tz))
    hour = local.hour % 12 or 12
    return (
        f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} "
        f"{'AM' if local.hour < 12 else 'PM'} {local.tzname()}"
    )


def label(value: Any) -> str:
    if value is None:
        return "—"
    return LABELS.get(str(value), str(value).replace("_", " "))


def options_by_selected(choices: Iterable[Mapping[str, Any]]) -> dict[Any, Markup]:
    """A select that every row repeats (referral source): its ``<option>``s rendered once per
    page for each choice selected (key: the choice's ``code``; ``None``: none selected), so a
    row picks one string instead of looping and escaping every option again."""
    pairs = [(str(c["code"]), str(c["label"])) for c in choices]

    def render(selected: str | None) -> Markup:
        return Markup("").join(
            Markup('<option value="{}"{}>{}</option>').format(
                code, Markup(" selected") if code == selected else "", text
            )
            for code, text in pairs
        )

    options: dict[Any, Markup] = {code: render(code) for code, _ in pairs}
    options[None] = render(None)
    return options


FILTERS = {
    "money": money,
    "per_interval": per_interval,
    "date": date,
    "datetime": datetime,
    "label": label,
    "options_by_selected": options_by_selected,
}
