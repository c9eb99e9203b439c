"""The memberships page's data: every `api` call the page makes, in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from dashboard import query as q
from dashboard.db import Conn, fetch_all
from dashboard.pages import db_message
from dashboard.reads import check_programme, read_columns, read_practice, read_referrals

LIST_SQL: Final = """
select * from api.list_memberships(
    %(practice)s, p_tab => %(p_tab)s, p_status => %(p_status)s,
    p_google_review => %(p_google_review)s, p_referral_source => %(p_referral_source)s,
    p_fulfillment => %(p_fulfillment)s, p_started_from => %(p_started_from)s,
    p_started_to => %(p_started_to)s, p_search => %(p_search)s, p_sort => %(p_sort)s,
    p_after => %(p_after)s, p_limit => %(p_limit)s,
    p_last_paid_from => %(p_last_paid_from)s, p_last_paid_to => %(p_last_paid_to)s
)
"""
EXPORT_SQL: Final = """
select api.export_memberships_csv(
    %(practice)s, p_tab => %(p_tab)s, p_status => %(p_status)s,
    p_google_review => %(p_google_review)s, p_referral_source => %(p_referral_source)s,
    p_fulfillment => %(p_fulfillment)s, p_started_from => %(p_started_from)s,
    p_started_to => %(p_started_to)s, p_search => %(p_search)s, p_sort => %(p_sort)s,
    p_last_paid_from => %(p_last_paid_from)s, p_last_paid_to => %(p_last_paid_to)s
) as csv
"""
TABS_SQL: Final = "select tab, label, member_count from api.membership_tab_counts(%s)"


async def list_context_checks(
    conn: Conn,
    practice_id: uuid.UUID,
    query: q.MembershipQuery,
    referrals: list[dict[str, Any]] | None = None,
) -> None:
    """The filter's programme and referral are this practice's (``referrals`` when the
    caller has read them already)."""
    if query.programme_id:
        await check_programme(conn, practice_id, query.programme_id)
    if query.referral:
        if referrals is None:
            referrals = await read_referrals(conn, practice_id)
        codes = {r["code"] for r in referrals}
        if query.referral not in codes:
            raise q.BadQuery([f"referral {query.referral!r} is not one of this practice's sources"])


async def memberships_context(
    conn: Conn, practice_id: uuid.UUID, query: q.MembershipQuery
) -> dict[str, Any]:
    """Everything the memberships page shows, read through `api` in the caller's transaction
    (the benchmark times exactly these calls beside the page)."""
    practice = await read_practice(conn, practice_id)
    categories = await fetch_all(
        conn,
        "select id, name from api.categories where practice_id = %s order by sort_order, name",
        (practice_id,),
    )
    referrals = await read_referrals(conn, practice_id)
    await list_context_checks(conn, practice_id, query, referrals)
    tabs = await fetch_all(conn, TABS_SQL, (practice_id,))
    args = query.api_args() | {
        "practice": practice_id,
        "p_after": Jsonb(query.after) if query.after else None,
        "p_limit": query.limit + 1,
    }
    try:
        rows = await fetch_all(conn, LIST_SQL, args)
    except psycopg.errors.InvalidParameterValue as exc:
        raise q.BadQuery([db_message(exc)]) from exc
    except psycopg.errors.InvalidTextRepresentation as exc:
        raise q.BadQuery(["after is not a page cursor for this sort"]) from exc
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    columns = await read_columns(conn)
    base = f"/p/{practice_id}/memberships"
    return {
        "practice": practice,
        "categories": categories,
        "referrals": referrals,
        "tabs": tabs,
        "rows": rows,
        "query": query,
        "columns": columns,
        "all_columns": q.COLUMNS,
        "base": base,
        "next_url": query.url(base, after=rows[-1]["cursor"]) if more and rows else None,
        "first_url": query.url(base) if query.after else None,
        "export_url": query.url(base + "/export.csv"),
        "statuses": q.STATUSES,
    }
