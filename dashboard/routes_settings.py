"""Routes: the practice's settings (owners and admins): name, time zone, grace period before
past due, lapse period, auto-apply, the repeat-purchase member rule, the default billing
interval, and the referral sources.

The form's values go to ``api.update_practice_settings`` as they were typed: the database
checks every field and names each bad one, so the page repeats its reasons and keeps what
the user typed; nothing is stored until every field is good."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Final

import psycopg
from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.response import Template
from psycopg.types.json import Jsonb

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all, fetch_one
from dashboard.pages import Refused, attempt, page
from dashboard.reads import read_admin_practice, read_practice, read_referrals
from dashboard.runtime import Runtime

ADMINS_ONLY: Final = "Only the practice's owners and admins change the practice's settings."
INTERVALS: Final = ("weekly", "biweekly", "monthly", "quarterly", "semiannually", "yearly")
MAX_LABEL: Final = 100
IN_USE: Final = "That referral source is used by memberships: it cannot be removed."
SETTINGS_SQL: Final = (
    "select id, name, timezone, past_due_grace_days, lapse_days, auto_apply_suggestions, "
    "count_repeat_purchases, default_billing_interval from api.practices where id = %s"
)


def _number(value: str) -> int | str:
    """Digits become a number; anything else goes as typed, for the database to name."""
    value = value.strip()
    return int(value) if value.isdigit() and len(value) <= 6 else value


def settings_changes(data: dict[str, str]) -> dict[str, Any]:
    """The settings form as api.update_practice_settings's changes (every field present:
    an unticked checkbox is absent from the form and means false)."""
    return {
        "name": data.get("name", ""),
        "timezone": data.get("timezone", "").strip(),
        "past_due_grace_days": _number(data.get("past_due_grace_days", "")),
        "lapse_days": _number(data.get("lapse_days", "")),
        "auto_apply_suggestions": data.get("auto_apply_suggestions") == "on",
        "count_repeat_purchases": data.get("count_repeat_purchases") == "on",
        "default_billing_interval": data.get("default_billing_interval", ""),
    }


def referral_code(label: str) -> str:
    """The stored code of a new referral source: its label in lower case, words joined by _."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:64]


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the practice's settings (owners and admins)."""

    async def render(
        conn: Conn,
        identity: Identity,
        practice: dict[str, Any],
        *,
        form: dict[str, Any] | None = None,
        ok: str | None = None,
        refused: Refused | None = None,
    ) -> Template:
        settings = await fetch_one(conn, SETTINGS_SQL, (practice["id"],))
        zones = await fetch_all(conn, "select name from api.time_zones order by name")
        return page(
            "settings.html",
            refused.status if refused else 200,
            identity=identity,
            practice=practice,
            values=form or settings,
            zones=[z["name"] for z in zones],
            intervals=INTERVALS,
            referrals=await read_referrals(conn, practice["id"]),
            message=refused.message if refused else None,
            ok=ok,
        )

    @get("/p/{practice_id:uuid}/settings")
    async def settings_page(practice_id: uuid.UUID, identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            return await render(conn, identity, practice)

    @post("/p/{practice_id:uuid}/settings")
    async def save_settings(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        changes = settings_changes(data)
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(
                conn,
                "select api.update_practice_settings(%s, %s)",
                (practice_id, Jsonb(changes)),
            )
            if isinstance(outcome, Refused):
                # the page keeps what was typed beside the reasons
                return await render(conn, identity, practice, form=changes, refused=outcome)
            practice = await read_practice(conn, practice_id)  # the new name in the header
            return await render(conn, identity, practice, ok="Settings saved.")

    @post("/p/{practice_id:uuid}/settings/referrals")
    async def add_referral(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        label = " ".join((data.get("label") or "").split())
        code = referral_code(label)
        if not code:
            raise q.BadQuery(["a referral source needs a name with a letter or a digit"])
        if len(label) > MAX_LABEL:
            raise q.BadQuery([f"the name is longer than {MAX_LABEL} characters"])
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            existing = {r["code"] for r in await read_referrals(conn, practice_id)}
            if code in existing:
                return await render(
                    conn,
                    identity,
                    practice,
                    refused=Refused(f"A referral source like “{label}” exists already."),
                )
            outcome = await attempt(
                conn,
                "select api.set_referral_source(%s, %s, %s, %s)",
                (practice_id, code, label, 100 + len(existing)),
            )
            if isinstance(outcome, Refused):
                return await render(conn, identity, practice, refused=outcome)
            return await render(conn, identity, practice, ok=f"Referral source {label} added.")

    @post("/p/{practice_id:uuid}/settings/referrals/delete")
    async def delete_referral(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        code = (data.get("code") or "").strip()
        if not code:
            raise q.BadQuery(["choose a referral source"])
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(
                conn,
                "select api.delete_referral_source(%s, %s) as found",
                (practice_id, code),
                {psycopg.errors.ForeignKeyViolation: IN_USE},
            )
            if isinstance(outcome, Refused):
                return await render(conn, identity, practice, refused=outcome)
            if not outcome.get("found"):
                raise NotFoundException("no such referral source")
            return await render(conn, identity, practice, ok="Referral source removed.")

    return [settings_page, save_settings, add_referral, delete_referral]
