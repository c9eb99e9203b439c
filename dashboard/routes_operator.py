"""Routes: the operator view, for the people who run the service (``app.operators``, managed
by ``python -m worker operator add EMAIL``): every practice and merchant account with its
health, the facts of ``python -m worker status``. Anyone else gets a 404: the page does not
exist for them. Operators need no practice membership and see no practice's data here."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.response import Template

from dashboard.auth import Identity
from dashboard.db import Conn, fetch_one
from dashboard.pages import page
from dashboard.runtime import Runtime


async def read_is_operator(conn: Conn) -> bool:
    row = await fetch_one(conn, "select api.is_operator() as yes")
    return bool(row and row["yes"])


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the operator view."""

    @get("/operator")
    async def operator(identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            if not await read_is_operator(conn):
                raise NotFoundException("no such page")
            row = await fetch_one(conn, "select api.operator_overview() as o")
        overview: dict[str, Any] = (row or {}).get("o") or {}
        merchants = {m["mx_merchant_id"]: m for m in overview.get("merchants", [])}
        accounts = [
            a | {"status": merchants.get(a["mx_merchant_id"], {})}
            for a in overview.get("merchant_accounts", [])
        ]
        return page(
            "operator.html",
            identity=identity,
            practice=None,
            overview=overview,
            accounts=accounts,
        )

    return [operator]
