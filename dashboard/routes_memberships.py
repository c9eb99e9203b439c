"""Routes: the memberships list, its tabs, CSV export, one row and its edits, columns."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any, Final

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from psycopg.types.json import Jsonb

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all, fetch_one
from dashboard.format import label as label_of
from dashboard.memberships_view import (
    EXPORT_SQL,
    TABS_SQL,
    list_context_checks,
    memberships_context,
)
from dashboard.pages import PRACTICE_COOKIE, Refused, page, safe_next, try_write
from dashboard.reads import (
    read_columns,
    read_membership,
    read_practice,
    read_referrals,
)
from dashboard.runtime import Runtime
from dashboard.session import (
    cookie_header,
    remember,
)

STATUS_ACTIONS: Final = {"pause": "paused", "cancel": "canceled", "reactivate": "active"}
WORKFLOW_FIELDS: Final = ("google_review", "referral", "fulfillment", "notes")


def row_version(row: dict[str, Any]) -> str:
    """A short fingerprint of what a row shows: equal fingerprints, nothing to redraw."""
    return hashlib.blake2b(repr(sorted(row.items())).encode(), digest_size=8).hexdigest()


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the memberships list, its tabs, CSV export, one row and its edits, columns."""
    settings = rt.settings

    @get("/p/{practice_id:uuid}/memberships")
    async def memberships(
        request: HTMXRequest, practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = q.parse_query(request.query_params.dict(), settings.dashboard_page_size)
        async with rt.user(identity) as conn:
            context = await memberships_context(conn, practice_id, query)
        partial = bool(request.htmx) and not request.htmx.boosted
        remember(
            request.scope,
            cookie_header(
                PRACTICE_COOKIE, str(practice_id), 365 * 86400, settings.dashboard_cookie_secure
            ),
        )
        return page(
            "_results.html" if partial else "memberships.html", identity=identity, **context
        )

    @get("/p/{practice_id:uuid}/memberships/tabs")
    async def membership_tabs(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = q.parse_query(request.query_params.dict(), settings.dashboard_page_size)
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            tabs = await fetch_all(conn, TABS_SQL, (practice_id,))
        return page(
            "_tabs.html",
            practice=practice,
            tabs=tabs,
            query=query,
            base=f"/p/{practice_id}/memberships",
        )

    @get("/p/{practice_id:uuid}/memberships/export.csv")
    async def export_csv(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> Response[bytes]:
        query = q.parse_query(request.query_params.dict(), settings.dashboard_page_size)
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            await list_context_checks(conn, practice_id, query)
            row = await fetch_one(conn, EXPORT_SQL, query.api_args() | {"practice": practice_id})
        csv = (row or {}).get("csv") or ""
        name = f"memberships-{practice['slug']}-{dt.date.today().isoformat()}.csv"
        return Response(
            csv.encode(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def _row_response(
        conn: Conn,
        practice: dict[str, Any],
        membership_id: uuid.UUID,
        message: str | None = None,
        status: int = 200,
        ok: str | None = None,
    ) -> Template:
        row = await read_membership(conn, practice["id"], membership_id)
        return page(
            "_row.html",
            status,
            practice=practice,
            row=row,
            columns=await read_columns(conn),
            referrals=await read_referrals(conn, practice["id"]),
            message=message,
            ok=ok,
            version=row_version(row),
            base=f"/p/{practice['id']}/memberships",
        )

    async def _change_row(
        conn: Conn,
        practice: dict[str, Any],
        membership_id: uuid.UUID,
        call: str,
        params: tuple[Any, ...],
        refused_prefix: str = "",
    ) -> dict[str, Any] | Template:
        """One audited ``api`` change of a row (404 first when RLS hides the row), in a
        savepoint; a refusal comes back as the row with its message (the row's template),
        a success as the call's ``result`` row for the caller to word."""
        await read_membership(conn, practice["id"], membership_id)
        outcome = await try_write(conn, call, params)
        if isinstance(outcome, Refused):
            return await _row_response(
                conn,
                practice,
                membership_id,
                f"{refused_prefix}{outcome.message}",
                outcome.status,
            )
        return outcome[0] if outcome else {}

    @get("/p/{practice_id:uuid}/memberships/{membership_id:uuid}/row")
    async def membership_row(
        practice_id: uuid.UUID, membership_id: uuid.UUID, identity: Identity, v: str | None = None
    ) -> Template | Response[None]:
        """The row re-read on a live event; ``v`` is the version the browser shows, when the row
        came from an edit (its "Saved" stays when the event is the echo of that edit)."""
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            row = await _row_response(conn, practice, membership_id)
        if v is not None and row.context["version"] == v:
            return Response(None, status_code=204)  # the browser shows it already: no swap
        return row

    @post("/p/{practice_id:uuid}/memberships/{membership_id:uuid}/workflow")
    async def edit_workflow(
        practice_id: uuid.UUID,
        membership_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        field = data.get("field", "")
        value = (data.get("value") or "").strip()
        changes: dict[str, Any]
        if field == "google_review":
            if value not in ("yes", "no"):
                raise q.BadQuery(["google review must be yes or no"])
            changes = {"google_review_submitted": value == "yes"}
        elif field == "referral":
            changes = {"referral_source": value or None}
        elif field == "fulfillment":
            if value and value not in q.FULFILMENTS:
                raise q.BadQuery(["fulfilment must be in_office or mail_out"])
            changes = {"fulfillment": value or None}
        elif field == "notes":
            if len(value) > 2000:
                raise q.BadQuery(["notes are longer than 2,000 characters"])
            changes = {"notes": value or None}
        else:
            raise q.BadQuery([f"field must be one of {', '.join(WORKFLOW_FIELDS)}"])
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)  # 404 first for another practice
            done = await _change_row(
                conn,
                practice,
                membership_id,
                "select api.update_membership_workflow(%s, %s) as result",
                (membership_id, Jsonb(changes)),
            )
            if isinstance(done, Template):
                return done
            return await _row_response(conn, practice, membership_id, ok="Saved")

    @post("/p/{practice_id:uuid}/memberships/{membership_id:uuid}/status")
    async def set_status(
        practice_id: uuid.UUID,
        membership_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        action = data.get("action", "")
        status = STATUS_ACTIONS.get(action)
        if status is None:
            raise q.BadQuery(["action must be pause, cancel or reactivate"])
        reason = (data.get("reason") or "").strip()
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)  # 404 first for another practice
            done = await _change_row(
                conn,
                practice,
                membership_id,
                "select api.set_membership_status(%s, %s, %s) as result",
                (membership_id, status, reason),
                refused_prefix="Refused: ",
            )
            if isinstance(done, Template):
                return done
            new_status = done.get("result")
            note = f"Done: now {label_of(new_status)}"
            if new_status != status:
                note = (
                    f"Recorded, but the status is {label_of(new_status)}: newer "
                    "evidence decides (see the patient's history)"
                )
            return await _row_response(conn, practice, membership_id, ok=note)

    @post("/preferences/columns")
    async def set_columns(
        request: HTMXRequest,
        identity: Identity,
    ) -> Response[Any]:
        form = await request.form()
        columns = (
            [c for c in form.getall("columns") if isinstance(c, str)] if "columns" in form else []
        )
        unknown = [c for c in columns if c not in q.COLUMNS]
        if unknown:
            raise q.BadQuery([f"unknown column(s): {', '.join(unknown)[:200]}"])
        async with rt.user(identity) as conn:
            await conn.execute("select api.set_membership_columns(%s)", (columns,))
        target = safe_next(str(form.get("next") or "/"))
        if request.htmx:
            return Response(b"", status_code=204, headers={"HX-Refresh": "true"})
        return Redirect(target, status_code=303)

    return [
        memberships,
        membership_tabs,
        export_csv,
        membership_row,
        edit_workflow,
        set_status,
        set_columns,
    ]
