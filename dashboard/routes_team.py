"""Routes: the Team page (owners): the practice's staff, invitations, roles, removals.

Everything goes through ``api`` as the signed-in owner; the database decides who may (only
an owner of the practice: ``private.require_practice_owner``) and keeps the rules (the last
owner stays; an unconfirmed, uninvited account gets no role). An invitation of an address
with no account is recorded and sent by the worker (the dashboard has no service role)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

import psycopg
from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.response import Template

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all
from dashboard.pages import Refused, page, refusal_of, try_write
from dashboard.reads import read_practice
from dashboard.runtime import Runtime

ROLES: Final = ("owner", "admin", "staff", "viewer")
OUTCOMES: Final = {
    "invitation queued": "Invitation queued: the worker sends the e-mail within a minute.",
    "added": "Added to the team.",
    "role changed": "Role changed.",
    "unchanged": "Nothing to change: that is already their role.",
}

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _role(data: dict[str, str]) -> str:
    role = data.get("role", "")
    if role not in ROLES:
        raise q.BadQuery([f"role must be one of {', '.join(ROLES)}"])
    return role


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the Team page and its actions."""

    async def team_page(
        conn: Conn,
        identity: Identity,
        practice: dict[str, Any],
        *,
        message: str | None = None,
        ok: str | None = None,
        status: int = 200,
    ) -> Template:
        try:
            async with conn.transaction():
                team = await fetch_all(
                    conn, "select * from api.practice_team(%s)", (practice["id"],)
                )
        except psycopg.errors.InsufficientPrivilege as exc:
            refusal = refusal_of(exc)  # not an owner: said plainly, with no team data
            context = {
                "identity": identity,
                "practice": practice,
                "title": "Only the practice's owners manage its team",
                "reasons": [refusal.message],
                "status": refusal.status,
            }
            return Template("error.html", context=context, status_code=refusal.status)
        return page(
            "team.html",
            status,
            identity=identity,
            practice=practice,
            team=team,
            roles=ROLES,
            me=identity.user_id,
            message=message,
            ok=ok,
        )

    async def act(
        identity: Identity,
        practice_id: uuid.UUID,
        sql: str,
        params: tuple[Any, ...],
        done: str | None = None,
    ) -> Template:
        """One team change in a savepoint, then the page: with the outcome, or the refusal
        (its status, nothing changed)."""
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)  # 404 for another practice
            rows = await try_write(conn, sql, params)
            if isinstance(rows, Refused):
                return await team_page(
                    conn, identity, practice, message=rows.message, status=rows.status
                )
            outcome = str(rows[0].get("outcome") if rows else None)
            ok = done or OUTCOMES.get(outcome, "Done.")
            return await team_page(conn, identity, practice, ok=ok)

    @get("/p/{practice_id:uuid}/team")
    async def team(practice_id: uuid.UUID, identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)  # 404 for another practice
            return await team_page(conn, identity, practice)

    @post("/p/{practice_id:uuid}/team/invite")
    async def invite(practice_id: uuid.UUID, identity: Identity, data: Form) -> Template:
        email = data.get("email", "").strip()
        if not email:
            raise q.BadQuery(["e-mail is required"])
        if len(email) > 254:
            raise q.BadQuery(["e-mail is longer than 254 characters"])
        return await act(
            identity,
            practice_id,
            "select api.invite_practice_member(%s, %s, %s) as outcome",
            (practice_id, email, _role(data)),
        )

    @post("/p/{practice_id:uuid}/team/{user_id:uuid}/role")
    async def change_role(
        practice_id: uuid.UUID, user_id: uuid.UUID, identity: Identity, data: Form
    ) -> Template:
        return await act(
            identity,
            practice_id,
            "select api.set_practice_member_role(%s, %s, %s) as outcome",
            (practice_id, user_id, _role(data)),
        )

    @post("/p/{practice_id:uuid}/team/{user_id:uuid}/remove")
    async def remove(practice_id: uuid.UUID, user_id: uuid.UUID, identity: Identity) -> Template:
        return await act(
            identity,
            practice_id,
            "select api.remove_practice_member(%s, %s) as outcome",
            (practice_id, user_id),
            "Removed from the team (their account stays).",
        )

    @post("/p/{practice_id:uuid}/team/invitations/{invitation_id:int}/cancel")
    async def cancel(practice_id: uuid.UUID, invitation_id: int, identity: Identity) -> Template:
        return await act(
            identity,
            practice_id,
            "select api.cancel_member_invitation(%s, %s) as outcome",
            (practice_id, invitation_id),
            "Invitation withdrawn.",
        )

    return [team, invite, change_role, remove, cancel]
