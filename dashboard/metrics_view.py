"""The metrics and revenue outlook pages: their query strings (checked: a bad value is a 400
with the reason) and the figures shaped for the tables and the charts.

The figures come from `api.metrics_series` / `api.revenue_outlook`; nothing is computed here
but their arrangement. Each chart is drawn by `static/charts.js` (Chart.js) from the same
figures the table under it shows, handed over as JSON.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from dashboard.query import BadQuery, parse_date, reader

MAX_YEARS: Final = 5  # api.metrics_series refuses longer periods
MONTHS_AHEAD: Final = (3, 6, 12)
MONTHS_BACK: Final = (0, 3, 6, 12)
SERIES_SQL: Final = "select * from api.metrics_series(%s, %s, %s)"
OUTLOOK_SQL: Final = "select * from api.revenue_outlook(%s, %s, %s)"


def _params(
    params: Mapping[str, Sequence[str]], known: set[str]
) -> tuple[dict[str, str], list[str]]:
    """One value per known parameter; the reasons for anything else."""
    reasons: list[str] = []
    one = reader(params, known, reasons)
    return {name: one(name) for name in known}, reasons


@dataclass(frozen=True)
class MetricsQuery:
    start: dt.date
    end: dt.date
    programme: str = "all"  # all | a programme (category) id


def parse_metrics_query(params: Mapping[str, Sequence[str]], today: dt.date) -> MetricsQuery:
    """from/to (default: the last 12 months to today) and programme; raises BadQuery."""
    values, reasons = _params(params, {"from", "to", "programme"})
    year, month = divmod(today.year * 12 + today.month - 1 - 11, 12)
    default_start = dt.date(year, month + 1, 1)  # this month and the 11 before it
    dates: dict[str, dt.date] = {"from": default_start, "to": today}
    for name in ("from", "to"):
        dates[name] = parse_date(name, values[name], reasons) or dates[name]
    start, end = dates["from"], dates["to"]
    if start > end:
        reasons.append(f"from ({start}) is after to ({end})")
    elif (end.year, end.month, end.day) > (start.year + MAX_YEARS, start.month, start.day):
        reasons.append(f"the period is longer than {MAX_YEARS} years")
    programme = values["programme"] or "all"
    if programme != "all":
        try:
            programme = str(uuid.UUID(programme))
        except ValueError:
            reasons.append("programme must be all or a programme id")
    if reasons:
        raise BadQuery(reasons)
    return MetricsQuery(start, end, programme)


def month_label(value: dt.date) -> str:
    return f"{value:%b} {value.year}"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def metrics_view(rows: list[dict[str, Any]], query: MetricsQuery) -> dict[str, Any]:
    """The series by month for the chosen programme (or all): tables and chart data.

    Raises BadQuery when the chosen programme is not one of the practice's."""
    programmes: dict[str, str] = {}
    for row in rows:
        if row["category_id"] is not None:
            programmes.setdefault(str(row["category_id"]), row["category_name"])
    if query.programme != "all" and query.programme not in programmes:
        raise BadQuery(["programme is not one of this practice's programmes"])
    shown = (
        programmes if query.programme == "all" else {query.programme: programmes[query.programme]}
    )

    months: list[dt.date] = sorted({row["period_start"] for row in rows})
    labels = [month_label(m) for m in months]
    scope_key = None if query.programme == "all" else query.programme
    scope = {
        row["period_start"]: row
        for row in rows
        if (str(row["category_id"]) if row["category_id"] else None) == scope_key
    }
    active: dict[str, dict[dt.date, int]] = {key: {} for key in shown}
    for row in rows:
        key = str(row["category_id"]) if row["category_id"] else None
        if key in active:
            active[key][row["period_start"]] = row["active_at_end"]
    points = [scope[m] for m in months]

    charts = {
        "active": {
            "type": "line",
            "labels": labels,
            "datasets": [
                {"label": name, "data": [active[key].get(m, 0) for m in months]}
                for key, name in shown.items()
            ],
        },
        "mrr": {
            "type": "bar",
            "stacked": True,
            "labels": labels,
            "datasets": [
                {"label": "MRR", "kind": "line", "data": [_number(p["mrr"]) for p in points]},
                {"label": "New MRR", "data": [_number(p["new_mrr"]) for p in points]},
                {
                    "label": "Reactivated MRR",
                    "data": [_number(p["reactivated_mrr"]) for p in points],
                },
                {"label": "Churned MRR", "data": [-float(p["churned_mrr"]) for p in points]},
            ],
        },
        "flow": {
            "type": "bar",
            "labels": labels,
            "datasets": [
                {"label": "New", "data": [p["new_members"] for p in points]},
                {"label": "Canceled", "data": [p["canceled"] for p in points]},
            ],
        },
        "churn": {
            "type": "line",
            "percent": True,
            "labels": labels,
            "datasets": [
                {
                    "label": "Churn rate (%)",
                    "data": [
                        None if p["churn_rate"] is None else float(p["churn_rate"] * 100)
                        for p in points
                    ],
                }
            ],
        },
    }
    return {
        "programmes": programmes,
        "shown": shown,
        "months": months,
        "points": points,
        "active": active,
        "charts": charts,
        "scope_name": "All programmes" if scope_key is None else shown[scope_key],
    }


@dataclass(frozen=True)
class OutlookQuery:
    back: int = 6
    ahead: int = 6


def parse_outlook_query(params: Mapping[str, Sequence[str]]) -> OutlookQuery:
    values, reasons = _params(params, {"back", "ahead"})
    chosen: dict[str, int] = {"back": 6, "ahead": 6}
    for name, allowed in (("back", MONTHS_BACK), ("ahead", MONTHS_AHEAD)):
        if values[name]:
            if values[name] not in {str(n) for n in allowed}:
                reasons.append(
                    f"{name} must be one of {', '.join(str(n) for n in allowed)} (months)"
                )
            else:
                chosen[name] = int(values[name])
    if reasons:
        raise BadQuery(reasons)
    return OutlookQuery(chosen["back"], chosen["ahead"])


def outlook_view(rows: list[dict[str, Any]], today: dt.date) -> dict[str, Any]:
    """Months as rows, programmes (then the total) as columns: collected and expected."""
    columns: dict[str, str] = {}  # key -> name, in the function's order (programmes, then All)
    cells: dict[tuple[dt.date, str], dict[str, Any]] = {}
    for row in rows:
        key = "total" if row["is_total"] else str(row["category_id"] or "none")
        columns.setdefault(key, row["category_name"])
        cells[(row["month_start"], key)] = row
    months: list[dt.date] = sorted({row["month_start"] for row in rows})
    this_month = today.replace(day=1)
    zero = Decimal("0")
    totals = [cells.get((m, "total"), {}) for m in months]
    chart = {
        "type": "bar",
        "stacked": True,
        "labels": [month_label(m) for m in months],
        "datasets": [
            {"label": "Collected", "data": [float(t.get("collected", zero)) for t in totals]},
            {"label": "Expected", "data": [float(t.get("expected", zero)) for t in totals]},
        ],
    }
    return {
        "columns": columns,
        "cells": cells,
        "months": months,
        "past": [m for m in months if m <= this_month],
        "coming": [m for m in months if m >= this_month],
        "this_month": this_month,
        "chart": chart,
        "expected_total": sum((t.get("expected", zero) for t in totals), zero),
        "collected_total": sum((t.get("collected", zero) for t in totals), zero),
    }
