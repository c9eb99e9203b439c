"""Routes: the metrics page (charts over time) and the revenue outlook.

Both read one `api` function as the signed-in user; the function decides who may (owners and
admins: staff get its insufficient_privilege as a 403 page, another practice a 404).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Template

from dashboard.auth import Identity
from dashboard.db import fetch_all
from dashboard.format import zone
from dashboard.metrics_view import (
    MONTHS_AHEAD,
    MONTHS_BACK,
    OUTLOOK_SQL,
    SERIES_SQL,
    metrics_view,
    outlook_view,
    parse_metrics_query,
    parse_outlook_query,
)
from dashboard.pages import page
from dashboard.reads import read_practice
from dashboard.runtime import Runtime


def _today(timezone: str | None) -> dt.date:
    return dt.datetime.now(zone(timezone)).date()


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the metrics page and the revenue outlook."""

    @get("/p/{practice_id:uuid}/metrics")
    async def metrics(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            query = parse_metrics_query(request.query_params.dict(), _today(practice["timezone"]))
            rows = await fetch_all(conn, SERIES_SQL, (practice_id, query.start, query.end))
        return page(
            "metrics.html",
            identity=identity,
            practice=practice,
            query=query,
            view=metrics_view(rows, query),
        )

    @get("/p/{practice_id:uuid}/revenue")
    async def revenue(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = parse_outlook_query(request.query_params.dict())
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            rows = await fetch_all(conn, OUTLOOK_SQL, (practice_id, query.back, query.ahead))
        return page(
            "revenue.html",
            identity=identity,
            practice=practice,
            query=query,
            months_back=MONTHS_BACK,
            months_ahead=MONTHS_AHEAD,
            view=outlook_view(rows, _today(practice["timezone"])),
        )

    return [metrics, revenue]
