"""Routes: every payment of a practice (filters, totals, keyset pages, CSV of the filter, the
recurring-only view), and the practice's MX contracts with each contract's payments."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

import psycopg
from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Stream, Template
from psycopg.types.json import Jsonb

from dashboard import payments_query as pq
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all, fetch_one
from dashboard.pages import db_message, page
from dashboard.query import BadQuery
from dashboard.reads import check_programme, read_practice
from dashboard.runtime import Runtime

# the same filter arguments for the list, the totals and the export (PaymentQuery.api_args)
LIST_SQL: Final = """
select * from api.list_payments(
    %(practice)s, p_kind => %(p_kind)s, p_status => %(p_status)s, p_source => %(p_source)s,
    p_category_id => %(p_category_id)s, p_has_invoice => %(p_has_invoice)s,
    p_from => %(p_from)s, p_to => %(p_to)s, p_search => %(p_search)s,
    p_recurring => %(p_recurring)s,
    p_after => %(p_after)s, p_limit => %(p_limit)s
)
"""
TOTALS_SQL: Final = """
select * from api.payment_totals(
    %(practice)s, p_kind => %(p_kind)s, p_status => %(p_status)s, p_source => %(p_source)s,
    p_category_id => %(p_category_id)s, p_has_invoice => %(p_has_invoice)s,
    p_from => %(p_from)s, p_to => %(p_to)s, p_search => %(p_search)s,
    p_recurring => %(p_recurring)s
)
"""
CSV_PAGE_SQL: Final = """
select line, cursor from api.payment_csv_lines(
    %(practice)s, p_kind => %(p_kind)s, p_status => %(p_status)s, p_source => %(p_source)s,
    p_category_id => %(p_category_id)s, p_has_invoice => %(p_has_invoice)s,
    p_from => %(p_from)s, p_to => %(p_to)s, p_search => %(p_search)s,
    p_recurring => %(p_recurring)s,
    p_after => %(p_after)s, p_limit => %(p_limit)s
)
"""
CSV_PAGE: Final = 1000  # payments per statement: well inside the statement timeout
CONTRACTS_SQL: Final = """
select c.*, pt.name as patient_name
from api.contracts as c
left join api.patients as pt on pt.id = c.patient_id
where c.practice_id = %(practice)s
    and (%(status)s::text is null or c.status = %(status)s)
    and (%(patient)s::uuid is null or c.patient_id = %(patient)s)
    and (
        %(pattern)s::text is null
        or c.customer_name ilike %(pattern)s or pt.name ilike %(pattern)s or c.id::text = %(q)s
    )
    and (%(after)s::bigint is null or c.id < %(after)s)
order by c.id desc
limit %(limit)s
"""
CONTRACT_STATUS_SQL: Final = """
select coalesce(c.status, '') as status, count(*) as contracts
from api.contracts as c where c.practice_id = %s
group by 1 order by count(*) desc, 1
"""
CONTRACT_PAYMENTS_SQL: Final = """
select p.*
from api.contract_payments as cp
inner join api.payments as p on p.id = cp.payment_id
where cp.contract_id = %s and cp.practice_id = %s
order by p.mx_created_at desc, p.id desc
"""


def _choices(known: tuple[str, ...], current: str | None) -> list[str]:
    """A select's options: what MX is known to send, and the value in use if it is another."""
    return [*known, current] if current and current not in known else list(known)


def _like(text: str) -> str | None:
    """An ILIKE pattern matching ``text`` anywhere, its wildcards taken as characters."""
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _csv_page(
    conn: Conn, args: dict[str, Any], after: dict[str, Any] | None
) -> tuple[bytes, dict[str, Any] | None]:
    """One page of the CSV, and the cursor of the next one (None after the last page)."""
    try:
        rows = await fetch_all(
            conn,
            CSV_PAGE_SQL,
            args | {"p_after": Jsonb(after) if after else None, "p_limit": CSV_PAGE},
        )
    except psycopg.errors.InvalidParameterValue as exc:  # the database's own check (22023)
        raise BadQuery([db_message(exc)]) from exc
    lines = [r for r in rows if r["cursor"] is not None]  # the first page starts with the header
    more = len(lines) == CSV_PAGE
    return "".join(r["line"] for r in rows).encode(), lines[-1]["cursor"] if more else None


async def payments_context(
    conn: Conn, practice_id: uuid.UUID, query: pq.PaymentQuery
) -> dict[str, Any]:
    """Everything the payments page shows, read through `api` in the caller's transaction."""
    practice = await read_practice(conn, practice_id)
    if query.programme:
        await check_programme(conn, practice_id, query.programme)
    categories = await fetch_all(
        conn,
        "select id, name from api.categories where practice_id = %s order by sort_order, name",
        (practice_id,),
    )
    args = query.api_args() | {"practice": practice_id}
    try:
        rows = await fetch_all(
            conn,
            LIST_SQL,
            args
            | {
                "p_after": Jsonb(query.after) if query.after else None,
                "p_limit": query.limit + 1,
            },
        )
        totals = await fetch_one(conn, TOTALS_SQL, args)
    except psycopg.errors.InvalidParameterValue as exc:  # the database's own check (22023)
        raise BadQuery([db_message(exc)]) from exc
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    base = f"/p/{practice_id}/payments"
    return {
        "practice": practice,
        "categories": categories,
        "rows": rows,
        "totals": totals,
        "query": query,
        "base": base,
        "next_url": query.url(base, after=rows[-1]["cursor"]) if more and rows else None,
        "first_url": query.url(base) if query.after else None,
        "export_url": query.url(base + "/export.csv"),
        "kinds": pq.KINDS,
        "statuses": _choices(pq.KNOWN_PAYMENT_STATUSES, query.status),
        "sources": _choices(pq.KNOWN_SOURCES, query.source),
    }


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the payments list and its CSV, the contracts list and one contract."""
    settings = rt.settings

    @get("/p/{practice_id:uuid}/payments")
    async def payments(
        request: HTMXRequest, practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = pq.parse_payment_query(request.query_params.dict(), settings.dashboard_page_size)
        async with rt.user(identity) as conn:
            context = await payments_context(conn, practice_id, query)
        partial = bool(request.htmx) and not request.htmx.boosted
        return page(
            "_payments_results.html" if partial else "payments.html",
            identity=identity,
            **context,
        )

    @get("/p/{practice_id:uuid}/payments/export.csv")
    async def payments_csv(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Stream:
        """The CSV of the filter, streamed a page at a time: each page is one short transaction
        as the user (a million payments would outlast one statement's timeout), the checks and
        the first page before the response starts, so a refusal is still a 404 or a 400."""
        query = pq.parse_payment_query(request.query_params.dict(), settings.dashboard_page_size)
        if query.after is not None:
            raise BadQuery(["the export is of the whole filter: leave out after"])
        args = query.api_args() | {"practice": practice_id}
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            if query.programme:
                await check_programme(conn, practice_id, query.programme)
            first = await _csv_page(conn, args, None)

        async def pages() -> AsyncIterator[bytes]:
            text, cursor = first
            yield text
            while cursor is not None:
                async with rt.user(identity) as page_conn:
                    text, cursor = await _csv_page(page_conn, args, cursor)
                yield text

        name = f"payments-{practice['slug']}-{dt.date.today().isoformat()}.csv"
        return Stream(
            pages(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @get("/p/{practice_id:uuid}/contracts")
    async def contracts(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = pq.parse_contract_query(request.query_params.dict(), settings.dashboard_page_size)
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            patient = None
            if query.patient:
                patient = await fetch_one(
                    conn,
                    "select id, name from api.patients where id = %s and practice_id = %s",
                    (query.patient, practice_id),
                )
                if patient is None:
                    raise NotFoundException("no such patient")
            counts = await fetch_all(conn, CONTRACT_STATUS_SQL, (practice_id,))
            rows = await fetch_all(
                conn,
                CONTRACTS_SQL,
                {
                    "practice": practice_id,
                    "status": query.status,
                    "patient": query.patient,
                    "pattern": _like(query.q),
                    "q": query.q,
                    "after": query.after,
                    "limit": query.limit + 1,
                },
            )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        base = f"/p/{practice_id}/contracts"
        known = [c["status"] for c in counts if c["status"]]
        return page(
            "contracts.html",
            identity=identity,
            practice=practice,
            patient=patient,
            counts=counts,
            total=sum(c["contracts"] for c in counts),
            statuses=list(dict.fromkeys([*pq.KNOWN_CONTRACT_STATUSES, *known])),
            rows=rows,
            query=query,
            base=base,
            next_url=query.url(base, after=rows[-1]["id"]) if more and rows else None,
            first_url=query.url(base) if query.after else None,
        )

    @get("/p/{practice_id:uuid}/contracts/{contract_id:int}")
    async def contract_page(
        practice_id: uuid.UUID, contract_id: int, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            contract = await fetch_one(
                conn,
                "select c.*, pt.name as patient_name from api.contracts as c "
                "left join api.patients as pt on pt.id = c.patient_id "
                "where c.id = %s and c.practice_id = %s",
                (contract_id, practice_id),
            )
            if contract is None:
                raise NotFoundException("no such contract")
            memberships = await fetch_all(
                conn,
                "select id, category_name, status, amount, billing_interval, next_billing_on "
                "from api.memberships where id = any(%s::uuid[]) and practice_id = %s "
                "order by category_name",
                (contract["membership_ids"], practice_id),
            )
            payments = await fetch_all(conn, CONTRACT_PAYMENTS_SQL, (contract_id, practice_id))
        return page(
            "contract.html",
            identity=identity,
            practice=practice,
            contract=contract,
            memberships=memberships,
            payments=payments,
        )

    return [payments, payments_csv, contracts, contract_page]
