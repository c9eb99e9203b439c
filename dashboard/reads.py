"""Shared reads through `api` that several pages make (the practice, the user's columns, ...)."""

from __future__ import annotations

import uuid
from typing import Any, Final

from litestar.exceptions import NotFoundException, PermissionDeniedException

from dashboard import query as q
from dashboard.db import Conn, fetch_all, fetch_one

ROW_SQL: Final = "select * from api.memberships where id = %s and practice_id = %s"
ADMIN_ROLES: Final = ("owner", "admin")


async def read_practice(conn: Conn, practice_id: uuid.UUID) -> dict[str, Any]:
    practice = await fetch_one(
        conn,
        "select p.id, p.name, p.slug, p.timezone, "
        "(select m.role from api.practice_members as m "
        " where m.practice_id = p.id and m.user_id = auth.uid()) as role "
        "from api.practices as p where p.id = %s",
        (practice_id,),
    )
    if practice is None:
        raise NotFoundException("no such practice")
    return practice


async def read_admin_practice(conn: Conn, practice_id: uuid.UUID, refusal: str) -> dict[str, Any]:
    """The practice, for its owners and admins; anyone else gets a 403 page saying ``refusal``.
    The database refuses their writes and hides the admin views anyway (RLS); this only says
    so before asking it."""
    practice = await read_practice(conn, practice_id)
    if practice.get("role") not in ADMIN_ROLES:
        raise PermissionDeniedException(refusal)
    return practice


async def read_practices(conn: Conn) -> list[dict[str, Any]]:
    return await fetch_all(
        conn,
        "select p.id, p.name, p.timezone, m.role from api.practices as p "
        "left join api.practice_members as m on m.practice_id = p.id and m.user_id = auth.uid() "
        "order by p.name",
    )


async def read_membership(
    conn: Conn, practice_id: uuid.UUID, membership_id: uuid.UUID
) -> dict[str, Any]:
    row = await fetch_one(conn, ROW_SQL, (membership_id, practice_id))
    if row is None:
        raise NotFoundException("no such membership")
    return row


async def check_programme(conn: Conn, practice_id: uuid.UUID, programme_id: str) -> None:
    """A programme id from a filter: one of this practice's that the user sees, else 404."""
    found = await fetch_one(
        conn,
        "select 1 as ok from api.categories where id = %s and practice_id = %s",
        (programme_id, practice_id),
    )
    if found is None:
        raise NotFoundException("no such programme")


async def read_columns(conn: Conn) -> list[str]:
    row = await fetch_one(conn, "select membership_columns from api.user_preferences")
    return list(row["membership_columns"]) if row else list(q.DEFAULT_COLUMNS)


async def read_referrals(conn: Conn, practice_id: uuid.UUID) -> list[dict[str, Any]]:
    return await fetch_all(
        conn,
        "select code, label from api.referral_sources where practice_id = %s "
        "order by sort_order, label",
        (practice_id,),
    )
