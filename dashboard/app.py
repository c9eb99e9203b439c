"""The dashboard app: ``create_app(settings)``.

Pages rendered on the server (Jinja2), htmx for fragments, server-sent events for live
updates. Every handler that shows or changes practice data runs in ``Runtime.user()``: one
transaction as the signed-in user through the ``api`` schema, so RLS decides what exists; an
id the user cannot see is a 404, whatever practice it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

import psycopg
from litestar import Litestar, Request, Response, get, post
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.params import Body
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.response import File, Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ExceptionHandlersMap
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from dashboard import query as q
from dashboard.auth import (
    AuthProvider,
    AuthUnavailable,
    FailureLimiter,
    Identity,
    InvalidToken,
    LocalAuth,
    RefreshCoalescer,
    SupabaseAuth,
    TokenPair,
    TokenVerifier,
)
from dashboard.db import Conn, DatabaseUnavailable, as_user, fetch_all, fetch_one, make_pool
from dashboard.format import FILTERS
from dashboard.format import label as label_of
from dashboard.live import RELOAD, LiveHub
from dashboard.session import (
    SessionMiddleware,
    cookie_header,
    end_session,
    identity_of,
    new_session,
    remember,
    session_of,
    tokens_of,
)
from dashboard.settings import ROOT, DashboardSettings

log = logging.getLogger("dashboard")
HERE = ROOT / "dashboard"
PRACTICE_COOKIE: Final = "mxd_practice"
VENDOR: Final = {
    "htmx.min.js": ("htmx.org/dist/htmx.min.js", "text/javascript"),
    "sse.js": ("htmx-ext-sse/dist/sse.js", "text/javascript"),
    "pico.min.css": ("@picocss/pico/css/pico.min.css", "text/css"),
}
STATUS_ACTIONS: Final = {"pause": "paused", "cancel": "canceled", "reactivate": "active"}
WORKFLOW_FIELDS: Final = ("google_review", "referral", "fulfillment", "notes")
SSE_PING_SECONDS: Final = 15.0
SSE_RECHECK_SECONDS: Final = 60.0

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
ROW_SQL: Final = "select * from api.memberships where id = %s and practice_id = %s"


class NotSignedIn(Exception):
    """The visitor has no valid session: to the sign-in page."""


class Refused(Exception):
    """The database refused a change (a rule, a bad value): said to the user, nothing changed."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass
class Runtime:
    settings: DashboardSettings
    verifier: TokenVerifier
    hub: LiveHub
    limit_email: FailureLimiter
    limit_address: FailureLimiter
    coalescer: RefreshCoalescer
    pool: AsyncConnectionPool[Any]
    provider: AuthProvider

    @asynccontextmanager
    async def user(self, identity: Identity) -> AsyncIterator[Conn]:
        async with as_user(self.pool, identity, self.settings.db_connect_timeout_seconds) as conn:
            yield conn


def _csrf_secret(settings: DashboardSettings) -> str:
    if settings.dashboard_csrf_secret:
        return settings.dashboard_csrf_secret
    base = settings.dashboard_jwt_secret or settings.dashboard_jwks_url
    return hmac.new(base.encode(), b"mx-dashboard-csrf", hashlib.sha256).hexdigest()


def _safe_next(value: str | None) -> str:
    """Only a local path (no scheme, no //host) may be a redirect target."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client and request.client.host else "unknown"


def _db_message(exc: psycopg.Error) -> str:
    diag = exc.diag.message_primary if exc.diag else None
    return (diag or str(exc)).split("\n")[0][:300]


def _refusal(exc: psycopg.Error) -> Refused:
    """A database error caused by the request: a clear message, never a 500."""
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Refused(f"Not allowed: {_db_message(exc)}", 403)
    if isinstance(exc, psycopg.errors.NoDataFound):
        return Refused("Not found", 404)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return Refused("That value is not one of this practice's choices.", 422)
    return Refused(_db_message(exc), 422)


async def _practice(conn: Conn, practice_id: uuid.UUID) -> dict[str, Any]:
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


async def _practices(conn: Conn) -> list[dict[str, Any]]:
    return await fetch_all(
        conn,
        "select p.id, p.name, p.timezone, m.role from api.practices as p "
        "left join api.practice_members as m on m.practice_id = p.id and m.user_id = auth.uid() "
        "order by p.name",
    )


async def _membership(
    conn: Conn, practice_id: uuid.UUID, membership_id: uuid.UUID
) -> dict[str, Any]:
    row = await fetch_one(conn, ROW_SQL, (membership_id, practice_id))
    if row is None:
        raise NotFoundException("no such membership")
    return row


async def _columns(conn: Conn) -> list[str]:
    row = await fetch_one(conn, "select membership_columns from api.user_preferences")
    return list(row["membership_columns"]) if row else list(q.DEFAULT_COLUMNS)


async def _referrals(conn: Conn, practice_id: uuid.UUID) -> list[dict[str, Any]]:
    return await fetch_all(
        conn,
        "select code, label from api.referral_sources where practice_id = %s "
        "order by sort_order, label",
        (practice_id,),
    )


async def _list_context_checks(
    conn: Conn, practice_id: uuid.UUID, query: q.MembershipQuery
) -> None:
    if query.programme_id:
        found = await fetch_one(
            conn,
            "select 1 as ok from api.categories where id = %s and practice_id = %s",
            (query.programme_id, practice_id),
        )
        if found is None:
            raise NotFoundException("no such programme")
    if query.referral:
        codes = {r["code"] for r in await _referrals(conn, practice_id)}
        if query.referral not in codes:
            raise q.BadQuery([f"referral {query.referral!r} is not one of this practice's sources"])


async def memberships_context(
    conn: Conn, practice_id: uuid.UUID, query: q.MembershipQuery
) -> dict[str, Any]:
    """Everything the memberships page shows, read through `api` in the caller's transaction
    (the benchmark times exactly these calls beside the page)."""
    practice = await _practice(conn, practice_id)
    categories = await fetch_all(
        conn,
        "select id, name from api.categories where practice_id = %s order by sort_order, name",
        (practice_id,),
    )
    await _list_context_checks(conn, practice_id, query)
    referrals = await _referrals(conn, practice_id)
    tabs = await fetch_all(conn, TABS_SQL, (practice_id,))
    args = query.api_args() | {
        "practice": practice_id,
        "p_after": Jsonb(query.after) if query.after else None,
        "p_limit": query.limit + 1,
    }
    try:
        rows = await fetch_all(conn, LIST_SQL, args)
    except psycopg.errors.InvalidParameterValue as exc:
        raise q.BadQuery([_db_message(exc)]) from exc
    except psycopg.errors.InvalidTextRepresentation as exc:
        raise q.BadQuery(["after is not a page cursor for this sort"]) from exc
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    columns = await _columns(conn)
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


def create_app(settings: DashboardSettings) -> Litestar:
    """Build the dashboard; the pool and the live listener start with the app's lifespan."""
    pool = make_pool(settings)
    verifier = TokenVerifier(
        settings.dashboard_jwt_secret,
        settings.dashboard_jwks_url,
        settings.dashboard_jwt_audience,
        settings.dashboard_jwt_issuer,
    )
    provider: AuthProvider
    if settings.uses_supabase_auth:
        provider = SupabaseAuth(settings.supabase_url, settings.supabase_anon_key)
    else:
        provider = LocalAuth(
            pool,
            settings.dashboard_jwt_secret,
            settings.dashboard_access_token_seconds,
            settings.dashboard_refresh_token_days * 86400,
            settings.dashboard_jwt_issuer,
            settings.dashboard_jwt_audience,
        )
    window = settings.dashboard_signin_window_seconds
    rt = Runtime(
        settings=settings,
        verifier=verifier,
        hub=LiveHub(settings.database_url),
        limit_email=FailureLimiter(settings.dashboard_signin_failures_per_email, window),
        limit_address=FailureLimiter(settings.dashboard_signin_failures_per_address, window),
        coalescer=RefreshCoalescer(),
        pool=pool,
        provider=provider,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)  # start while the database is down; recover later
        listener = asyncio.create_task(rt.hub.run(), name="live-listener")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await pool.close(timeout=2.0)

    async def require_identity(request: Request[Any, Any, Any]) -> Identity:
        state = session_of(request.scope)
        if state.auth_unavailable:
            raise AuthUnavailable("the identity provider is unavailable")
        if state.identity is None:
            raise NotSignedIn
        return state.identity

    # ------------------------------------------------------------------ pages

    def page(name: str, status: int = 200, **context: Any) -> Template:
        return Template(template_name=name, context=context, status_code=status)

    @get("/")
    async def home(request: Request[Any, Any, Any], identity: Identity) -> Response[Any]:
        async with rt.user(identity) as conn:
            practices = await _practices(conn)
        if not practices:
            return page("no_practice.html", identity=identity)
        chosen = request.cookies.get(PRACTICE_COOKIE)
        ids = [str(p["id"]) for p in practices]
        target = chosen if chosen in ids else ids[0]
        return Redirect(f"/p/{target}/memberships", status_code=303)

    @get("/practices")
    async def practices_page(identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practices = await _practices(conn)
        if not practices:
            return page("no_practice.html", identity=identity)
        return page("practices.html", identity=identity, practices=practices, practice=None)

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
            practice = await _practice(conn, practice_id)
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
            practice = await _practice(conn, practice_id)
            await _list_context_checks(conn, practice_id, query)
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
        practice_id: uuid.UUID,
        membership_id: uuid.UUID,
        message: str | None = None,
        status: int = 200,
        ok: str | None = None,
    ) -> Template:
        practice = await _practice(conn, practice_id)
        row = await _membership(conn, practice_id, membership_id)
        return page(
            "_row.html",
            status,
            practice=practice,
            row=row,
            columns=await _columns(conn),
            referrals=await _referrals(conn, practice_id),
            message=message,
            ok=ok,
            base=f"/p/{practice_id}/memberships",
        )

    @get("/p/{practice_id:uuid}/memberships/{membership_id:uuid}/row")
    async def membership_row(
        practice_id: uuid.UUID, membership_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            return await _row_response(conn, practice_id, membership_id)

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
            await _practice(conn, practice_id)
            await _membership(conn, practice_id, membership_id)
            try:
                async with conn.transaction():
                    await conn.execute(
                        "select api.update_membership_workflow(%s, %s)",
                        (membership_id, Jsonb(changes)),
                    )
            except psycopg.errors.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raise
                refusal = _refusal(exc)
                return await _row_response(
                    conn, practice_id, membership_id, refusal.message, refusal.status
                )
            return await _row_response(conn, practice_id, membership_id, ok="Saved")

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
            await _practice(conn, practice_id)
            await _membership(conn, practice_id, membership_id)
            try:
                async with conn.transaction():
                    row = await fetch_one(
                        conn,
                        "select api.set_membership_status(%s, %s, %s) as status",
                        (membership_id, status, reason),
                    )
            except psycopg.errors.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raise
                refusal = _refusal(exc)
                return await _row_response(
                    conn,
                    practice_id,
                    membership_id,
                    f"Refused: {refusal.message}",
                    refusal.status,
                )
            new_status = (row or {}).get("status")
            note = f"Done: now {label_of(new_status)}"
            if new_status != status:
                note = (
                    f"Recorded, but the status is {label_of(new_status)}: newer "
                    "evidence decides (see the patient's history)"
                )
            return await _row_response(conn, practice_id, membership_id, ok=note)

    @get("/p/{practice_id:uuid}/patients/{patient_id:uuid}")
    async def patient_page(
        practice_id: uuid.UUID, patient_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await _practice(conn, practice_id)
            row = await fetch_one(conn, "select api.patient_detail(%s) as d", (patient_id,))
            detail = (row or {}).get("d")
            if not detail or str(detail["patient"]["practice_id"]) != str(practice_id):
                raise NotFoundException("no such patient")
            ids = [m["id"] for m in detail["memberships"]]
            events = await fetch_all(
                conn,
                "select * from api.membership_events where membership_id = any(%s::uuid[]) "
                "and practice_id = %s order by evidence_at desc, id desc",
                (ids, practice_id),
            )
        history: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            history.setdefault(str(event["membership_id"]), []).append(event)
        return page(
            "patient.html",
            identity=identity,
            practice=practice,
            detail=detail,
            history=history,
            me=identity.user_id,
        )

    @post("/p/{practice_id:uuid}/invoices/{invoice_id:int}/followup")
    async def invoice_followup(
        practice_id: uuid.UUID,
        invoice_id: int,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        changes: dict[str, Any] = {}
        sent = data.get("data_sent_status")
        if sent is not None:
            if sent not in ("pending", "yes", "no"):
                raise q.BadQuery(["data sent must be pending, yes or no"])
            changes["data_sent_status"] = sent
        if "data_sent_notes" in data:
            notes = data["data_sent_notes"].strip()
            if len(notes) > 2000:
                raise q.BadQuery(["notes are longer than 2,000 characters"])
            changes["data_sent_notes"] = notes or None
        ordered = data.get("ordered")
        if ordered is not None:
            if ordered not in ("now", "clear", "keep"):
                raise q.BadQuery(["ordered must be now, clear or keep"])
            if ordered == "now":
                changes["ordered_by_provider_at"] = dt.datetime.now(dt.UTC).isoformat()
            elif ordered == "clear":
                changes["ordered_by_provider_at"] = None
        async with rt.user(identity) as conn:
            practice = await _practice(conn, practice_id)
            found = await fetch_one(
                conn,
                "select id from api.invoices where id = %s and practice_id = %s",
                (invoice_id, practice_id),
            )
            if found is None:
                raise NotFoundException("no such invoice")
            message, status, ok = None, 200, None
            try:
                async with conn.transaction():
                    await conn.execute(
                        "select api.update_invoice_followup(%s, %s)", (invoice_id, Jsonb(changes))
                    )
                ok = "Saved"
            except psycopg.errors.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raise
                refusal = _refusal(exc)
                message, status = refusal.message, refusal.status
            invoice = await fetch_one(
                conn, "select * from api.invoices where id = %s", (invoice_id,)
            )
        return page(
            "_followup.html", status, practice=practice, invoice=invoice, message=message, ok=ok
        )

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
        target = _safe_next(str(form.get("next") or "/"))
        if request.htmx:
            return Response(b"", status_code=204, headers={"HX-Refresh": "true"})
        return Redirect(target, status_code=303)

    @get("/p/{practice_id:uuid}/events")
    async def events(
        request: Request[Any, Any, Any], practice_id: uuid.UUID, identity: Identity
    ) -> ServerSentEvent:
        async with rt.user(identity) as conn:
            await _practice(conn, practice_id)
        key = str(practice_id)
        queue = rt.hub.subscribe(key)

        async def still_member() -> bool:
            try:
                async with rt.user(identity) as conn:
                    return bool(
                        await fetch_one(
                            conn, "select 1 as ok from api.practices where id = %s", (practice_id,)
                        )
                    )
            except DatabaseUnavailable:
                return True  # the live listener recovers; the page re-reads through api

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            checked = time.monotonic()
            try:
                yield ServerSentEventMessage(event="ready", data="", retry=2000)
                while True:
                    if time.time() >= identity.expires_at:
                        return  # the browser reconnects; the session refreshes the token
                    if time.monotonic() - checked > SSE_RECHECK_SECONDS:
                        if not await still_member():
                            return
                        checked = time.monotonic()
                    try:
                        item = await asyncio.wait_for(queue.get(), SSE_PING_SECONDS)
                    except TimeoutError:
                        yield ServerSentEventMessage(comment="ping")
                        continue
                    if item == RELOAD:
                        yield ServerSentEventMessage(event="reload", data="")
                        continue
                    for membership_id in item:
                        yield ServerSentEventMessage(event=f"m-{membership_id}", data="")
                    yield ServerSentEventMessage(event="changed", data=str(len(item)))
            finally:
                rt.hub.unsubscribe(key, queue)

        return ServerSentEvent(stream(), headers={"cache-control": "no-store"})

    # ------------------------------------------------------------------ sign-in

    @get("/auth/sign-in")
    async def sign_in_page(request: Request[Any, Any, Any], next: str = "/") -> Template:
        return page("sign_in.html", next=_safe_next(next), supabase=settings.uses_supabase_auth)

    @post("/auth/sign-in")
    async def sign_in(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        email = (data.get("email") or "").strip().lower()
        password = data.get("password") or ""
        target = _safe_next(data.get("next"))
        address = _client(request)
        wait = max(rt.limit_email.retry_after(email), rt.limit_address.retry_after(address))
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return page(
                "sign_in.html",
                429,
                next=target,
                email=email,
                supabase=settings.uses_supabase_auth,
                error=f"Too many failed sign-ins. Try again in about {minutes} minute(s), "
                "or use a sign-in link.",
            )
        pair = None
        if email and password and len(email) <= 320 and len(password) <= 1000:
            pair = await rt.provider.sign_in(email, password)
        if pair is None:
            rt.limit_email.failed(email)
            rt.limit_address.failed(address)
            log.info("sign-in failed", extra={"fields": {"client": address}})
            return page(
                "sign_in.html",
                401,
                next=target,
                email=email,
                supabase=settings.uses_supabase_auth,
                error="The e-mail or the password is wrong.",
            )
        try:
            identity = await rt.verifier.verify(pair.access_token)
        except InvalidToken as exc:
            raise AuthUnavailable("the issued token does not verify") from exc
        rt.limit_email.succeeded(email)
        new_session(request.scope, pair, identity)
        return Redirect(target, status_code=303)

    @post("/auth/magic-link")
    async def magic_link(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        email = (data.get("email") or "").strip().lower()
        address = _client(request)
        if rt.limit_address.retry_after(address) > 0 or rt.limit_email.retry_after(email) > 0:
            return page(
                "sign_in.html",
                429,
                next="/",
                email=email,
                supabase=settings.uses_supabase_auth,
                error="Too many attempts. Try again later.",
            )
        rt.limit_email.failed(email)  # every link request counts against the limits
        rt.limit_address.failed(address)
        if email:
            base = settings.dashboard_public_url.rstrip("/") or str(request.base_url).rstrip("/")
            link = await rt.provider.send_magic_link(email, f"{base}/auth/confirm")
            if link:  # local platform layer: no mail server, the operator reads the log
                log.warning(
                    "local sign-in link (no e-mail is sent locally)",
                    extra={"fields": {"email": email, "link": link}},
                )
        return page("link_sent.html", email=email, supabase=settings.uses_supabase_auth)

    @get("/auth/confirm")
    async def confirm_page(token: str = "", type: str = "") -> Template:
        return page("confirm.html", token=token, kind=type)

    @post("/auth/confirm")
    async def confirm(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        token = data.get("token") or ""
        kind = data.get("type") or ""
        password = data.get("password")
        if kind == "invite":
            if (password or "") != (data.get("password_again") or ""):
                return page(
                    "confirm.html", 422, token=token, kind=kind, error="The two passwords differ."
                )
            if len(password or "") < 8:
                return page(
                    "confirm.html",
                    422,
                    token=token,
                    kind=kind,
                    error="The password must have at least 8 characters.",
                )
        try:
            pair = await rt.provider.verify_link(token, password if kind == "invite" else None)
        except psycopg.errors.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            return page("confirm.html", 422, token=token, kind=kind, error=_db_message(exc))
        if pair is None:
            return page(
                "confirm.html",
                400,
                token="",
                kind=kind,
                error="This link is not valid any more (used or expired). "
                "Ask for a new one on the sign-in page.",
            )
        new_session(request.scope, pair, await rt.verifier.verify(pair.access_token))
        return Redirect("/", status_code=303)

    @post("/auth/session")
    async def session_from_link(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Supabase's links land with the tokens in the URL fragment; the page posts them."""
        pair = TokenPair(data.get("access_token") or "", data.get("refresh_token") or "")
        try:
            identity = await rt.verifier.verify(pair.access_token)
        except InvalidToken:
            return page(
                "confirm.html",
                400,
                token="",
                kind="",
                error="This link is not valid any more. Ask for a new one.",
            )
        new_session(request.scope, pair, identity)
        kind = data.get("type") or ""
        return Redirect(
            "/auth/set-password" if kind in ("invite", "recovery") else "/", status_code=303
        )

    @get("/auth/set-password")
    async def set_password_page(identity: Identity) -> Template:
        return page("set_password.html", identity=identity)

    @post("/auth/set-password")
    async def set_password(
        request: Request[Any, Any, Any],
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        password = data.get("password") or ""
        if password != (data.get("password_again") or "") or len(password) < 8:
            return page(
                "set_password.html",
                422,
                identity=identity,
                error="Give the same password twice, at least 8 characters.",
            )
        access, _ = tokens_of(request.scope)
        try:
            await rt.provider.set_password(access or "", password)
        except (ValueError, NotImplementedError) as exc:
            return page("set_password.html", 422, identity=identity, error=str(exc))
        return Redirect("/", status_code=303)

    @post("/auth/sign-out")
    async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
        access, refresh = tokens_of(request.scope)
        if refresh:
            with contextlib.suppress(AuthUnavailable):
                await rt.provider.sign_out(access or "", refresh)
        end_session(request.scope)
        response: Response[Any] = Redirect("/auth/sign-in", status_code=303)
        if request.headers.get("hx-request"):
            response = Response(b"", status_code=204, headers={"HX-Redirect": "/auth/sign-in"})
        return response

    # ------------------------------------------------------------------ operations, assets

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz() -> Response[dict[str, str]]:
        try:
            async with pool.connection(timeout=settings.db_connect_timeout_seconds) as conn:
                await conn.execute("select 1")
        except (psycopg.OperationalError, PoolTimeout):
            return Response(
                {"status": "database unavailable"}, status_code=503, headers={"Retry-After": "5"}
            )
        return Response({"status": "ready", "live": str(rt.hub.connected.is_set()).lower()})

    @get("/static/vendor/{name:str}")
    async def vendor(name: str) -> File:
        entry = VENDOR.get(name)
        if entry is None:
            raise NotFoundException("no such file")
        path = settings.dashboard_static_dir / entry[0]
        if not path.is_file():
            raise NotFoundException(f"{entry[0]} is missing: run make setup")
        return File(
            path=path,
            media_type=entry[1],
            content_disposition_type="inline",
            headers={"cache-control": "public, max-age=3600"},
        )

    # ------------------------------------------------------------------ errors

    def is_htmx(request: Request[Any, Any, Any]) -> bool:
        return request.headers.get("hx-request") == "true"

    def error_page(
        request: Request[Any, Any, Any],
        status: int,
        title: str,
        reasons: list[str],
        headers: dict[str, str] | None = None,
    ) -> Response[Any]:
        identity = identity_of(request.scope)
        template = "_error.html" if is_htmx(request) else "error.html"
        return Template(
            template_name=template,
            status_code=status,
            headers=headers,
            context={
                "title": title,
                "reasons": reasons,
                "status": status,
                "identity": identity,
                "practice": None,
            },
        )

    def not_signed_in(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        target = "/auth/sign-in"
        path = request.url.path
        if request.method == "GET" and path not in ("/", "/auth/sign-in"):
            query = f"?{request.url.query}" if request.url.query else ""
            target += "?" + urlencode({"next": path + query})
        if is_htmx(request) or path.endswith("/events"):
            return Response(b"", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)

    def bad_query(request: Request[Any, Any, Any], exc: q.BadQuery) -> Response[Any]:
        return error_page(request, 400, "That request cannot be answered", exc.reasons)

    def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        log.warning("dependency unavailable", extra={"fields": {"error_type": type(exc).__name__}})
        return error_page(
            request,
            503,
            "The dashboard cannot reach its database right now",
            ["Nothing was lost. Try again in a few seconds; this page recovers by itself."],
            {"Retry-After": "5"},
        )

    def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        if exc.status_code == 404:
            return error_page(
                request,
                404,
                "Not found",
                [
                    "There is nothing here you can see. Check the link, or go back "
                    "to your memberships."
                ],
            )
        if exc.status_code == 403:
            return error_page(request, 403, "Not allowed", [str(exc.detail)])
        if exc.status_code == 405:
            return error_page(request, 405, "Method not allowed", [str(exc.detail)])
        return error_page(
            request,
            exc.status_code,
            "That request cannot be answered",
            [str(exc.detail)],
            exc.headers,
        )

    def database_error(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response[Any]:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return unavailable(request, exc)
        refusal = _refusal(exc)
        return error_page(request, refusal.status, "Refused", [refusal.message])

    def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        log.error(
            "unhandled error",
            extra={"fields": {"error_type": type(exc).__name__, "path": request.url.path}},
        )
        return error_page(
            request,
            500,
            "Something went wrong on our side",
            ["It was logged. Try again; if it keeps happening, tell us."],
        )

    exception_handlers: ExceptionHandlersMap = {
        NotSignedIn: not_signed_in,
        q.BadQuery: bad_query,
        DatabaseUnavailable: unavailable,
        AuthUnavailable: unavailable,
        PoolTimeout: unavailable,
        HTTPException: http_error,
        psycopg.Error: database_error,
        Exception: internal_error,
    }

    def configure_jinja(engine: JinjaTemplateEngine) -> None:
        engine.engine.filters.update(FILTERS)
        engine.engine.auto_reload = False  # templates ship with the code: no stat per render
        engine.engine.globals["quote"] = quote

    protected = [
        home,
        practices_page,
        memberships,
        membership_tabs,
        export_csv,
        membership_row,
        edit_workflow,
        set_status,
        patient_page,
        invoice_followup,
        set_columns,
        events,
        set_password_page,
        set_password,
    ]
    public = [
        sign_in_page,
        sign_in,
        magic_link,
        confirm_page,
        confirm,
        session_from_link,
        sign_out,
        healthz,
        readyz,
        vendor,
    ]
    return Litestar(
        route_handlers=[
            *protected,
            *public,
            create_static_files_router(path="/static/app", directories=[HERE / "static"]),
        ],
        dependencies={"identity": Provide(require_identity)},
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(
                SessionMiddleware,
                settings=settings,
                verifier=verifier,
                provider=provider,
                coalescer=rt.coalescer,
            )
        ],
        csrf_config=CSRFConfig(
            secret=_csrf_secret(settings),
            cookie_name="mxd_csrf",
            cookie_secure=settings.dashboard_cookie_secure,
            cookie_httponly=True,
            cookie_samesite="lax",
        ),
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=configure_jinja,
        ),
        exception_handlers=exception_handlers,
        logging_config=None,
        openapi_config=None,
        state=State({"runtime": rt}),
    )
