"""Routes: the Events page of owners and admins: the webhook event explorer (filters, paging,
one event's masked payload, error and replays; replay one or a selection), the practice's sync
runs and "sync now" (a request the worker's scheduler carries out; the dashboard never calls
MX). What a user may see and do is decided by RLS and the ``api`` functions; the role check
here only turns staff into a clear 403 page instead of empty tables."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from litestar import get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all, fetch_one
from dashboard.pages import Refused, page, try_write
from dashboard.reads import read_admin_practice, read_practice
from dashboard.runtime import Runtime

EVENT_STATUSES: Final = ("queued", "retrying", "processed", "ignored", "rejected", "dead")
# the types MX sends (private.is_payment_event) and the ones reconcile and backfill record;
# any other well-formed type in the URL is accepted too
EVENT_TYPES: Final = ("PaymentSuccess", "PaymentFail", "RefundCreated", "Reconcile")
EVENT_TYPE_FORMAT: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}$")
MAX_REPLAY: Final = 100
RUNS_SHOWN: Final = 20
REQUESTS_SHOWN: Final = 10
ADMINS_ONLY: Final = "The Events page is for the practice's owners and admins."

EVENTS_SQL: Final = """
select e.id, e.received_at, e.mx_merchant_id, e.event_type, e.payment_id, e.origin, e.status,
    e.attempts, e.last_error, e.reject_reason, e.processed_at, e.duplicate_count
from api.webhook_events as e
where e.practice_id = %(practice)s
    and (%(status)s::text is null or e.status = %(status)s)
    and (%(type)s::text is null or e.event_type = %(type)s)
    and (%(from)s::date is null or e.received_at >= (%(from)s::date::timestamp at time zone %(tz)s))
    and (
        %(to)s::date is null
        or e.received_at < ((%(to)s::date + 1)::timestamp at time zone %(tz)s)
    )
    and (
        %(before)s::bigint is null
        or (e.received_at, e.id) < (
            select b.received_at, b.id from api.webhook_events as b
            where b.id = %(before)s and b.practice_id = %(practice)s
        )
    )
order by e.received_at desc, e.id desc
limit %(limit)s
"""


@dataclass(frozen=True)
class EventQuery:
    """The explorer's filters, checked: a bad value is a 400 with the reason."""

    status: str | None = None
    type: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    before: int | None = None
    limit: int = 50

    @classmethod
    def parse(cls, params: dict[str, Any]) -> EventQuery:
        reasons: list[str] = []

        def one(name: str) -> str:
            value = params.get(name)
            if isinstance(value, list):
                value = value[-1] if value else ""
            return str(value or "").strip()

        status = one("status") or None
        if status and status not in EVENT_STATUSES:
            reasons.append(f"status must be one of {', '.join(EVENT_STATUSES)}")
        event_type = one("type") or None
        if event_type and not EVENT_TYPE_FORMAT.match(event_type):
            reasons.append("type must be an MX event type such as PaymentSuccess")
        dates: dict[str, dt.date | None] = {}
        for name in ("from", "to"):
            raw = one(name)
            try:
                dates[name] = dt.date.fromisoformat(raw) if raw else None
            except ValueError:
                reasons.append(f"{name} must be a date (YYYY-MM-DD)")
                dates[name] = None
        if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
            reasons.append("from must not be after to")
        before: int | None = None
        raw_before = one("before")
        if raw_before:
            if raw_before.isdigit() and len(raw_before) < 19:
                before = int(raw_before)
            else:
                reasons.append("before must be an event id")
        limit = q.parse_limit(one("limit"), 50, reasons)
        if reasons:
            raise q.BadQuery(reasons)
        return cls(status, event_type, dates["from"], dates["to"], before, limit)

    def params(self, **changes: Any) -> dict[str, str]:
        values = {
            "status": self.status,
            "type": self.type,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "before": self.before,
            "limit": self.limit if self.limit != 50 else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v is not None}

    def url(self, base: str, **changes: Any) -> str:
        params = self.params(**changes)
        return f"{base}?{urlencode(params)}" if params else base

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.type or self.date_from or self.date_to)


async def read_events(
    conn: Conn, practice: dict[str, Any], query: EventQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of events, newest first, and the id to continue from (None on the last page)."""
    rows = await fetch_all(
        conn,
        EVENTS_SQL,
        {
            "practice": practice["id"],
            "status": query.status,
            "type": query.type,
            "from": query.date_from,
            "to": query.date_to,
            "tz": practice["timezone"] or "UTC",
            "before": query.before,
            "limit": query.limit + 1,
        },
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, (rows[-1]["id"] if more and rows else None)


async def read_sync(conn: Conn, practice_id: uuid.UUID) -> dict[str, Any]:
    """The practice's latest sync requests and runs (the "sync now" panel)."""
    requests = await fetch_all(
        conn,
        "select * from api.sync_requests where practice_id = %s "
        "order by requested_at desc, id desc limit %s",
        (practice_id, REQUESTS_SHOWN),
    )
    runs = await fetch_all(
        conn,
        "select * from api.sync_runs where practice_id = %s order by started_at desc, id desc "
        "limit %s",
        (practice_id, RUNS_SHOWN),
    )
    return {
        "requests": requests,
        "runs": runs,
        "open": any(r["status"] in ("pending", "running") for r in requests),
        "runs_shown": RUNS_SHOWN,
    }


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the Events page, one event, replays, sync now and its progress."""

    @get("/p/{practice_id:uuid}/event-log")
    async def events_page(
        request: HTMXRequest, practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        query = EventQuery.parse(request.query_params.dict())
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            events, next_before = await read_events(conn, practice, query)
            sync = await read_sync(conn, practice_id)
        base = f"/p/{practice_id}/event-log"
        partial = bool(request.htmx) and not request.htmx.boosted
        return page(
            "_event_list.html" if partial else "events.html",
            identity=identity,
            practice=practice,
            events=events,
            next_before=next_before,
            query=query,
            base=base,
            statuses=EVENT_STATUSES,
            types=EVENT_TYPES,
            page_sizes=q.PAGE_SIZES,
            **sync,
        )

    @get("/p/{practice_id:uuid}/event-log/{event_id:int}")
    async def event_page(practice_id: uuid.UUID, event_id: int, identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            event = await fetch_one(
                conn,
                "select * from api.webhook_events where id = %s and practice_id = %s",
                (event_id, practice_id),
            )
            if event is None:
                raise NotFoundException("no such event")
            replays = await fetch_all(
                conn,
                "select * from api.webhook_event_replays where event_id = %s "
                "order by replayed_at desc, id desc",
                (event_id,),
            )
        return page(
            "event.html", identity=identity, practice=practice, event=event, replays=replays
        )

    @post("/p/{practice_id:uuid}/event-log/replay")
    async def replay(request: HTMXRequest, practice_id: uuid.UUID, identity: Identity) -> Template:
        form = await request.form()
        chosen = form.getall("event_id") if "event_id" in form else []
        raw = [v for v in chosen if isinstance(v, str)]
        if not raw:
            raise q.BadQuery(["choose at least one event to replay"])
        if len(raw) > MAX_REPLAY:
            raise q.BadQuery([f"replay at most {MAX_REPLAY} events at a time"])
        if not all(v.strip().isdigit() and len(v.strip()) < 19 for v in raw):
            raise q.BadQuery(["event ids must be numbers"])
        ids = sorted({int(v) for v in raw})
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            found = await fetch_all(
                conn,
                "select id from api.webhook_events where id = any(%s) and practice_id = %s",
                (ids, practice_id),
            )
            if not found:
                raise NotFoundException("no such event")
            visible = {r["id"] for r in found}
            outcomes: list[dict[str, Any]] = []
            for event_id in ids:
                if event_id not in visible:
                    outcomes.append({"id": event_id, "ok": False, "message": "Not found"})
                    continue
                # a savepoint each: one refusal keeps the others
                done = await try_write(conn, "select api.replay_webhook_event(%s)", (event_id,))
                if isinstance(done, Refused):
                    outcomes.append({"id": event_id, "ok": False, "message": done.message})
                else:
                    outcomes.append({"id": event_id, "ok": True, "message": "Queued again"})
        replayed = sum(1 for o in outcomes if o["ok"])
        context: dict[str, Any] = {
            "identity": identity,
            "practice": practice,
            "outcomes": outcomes,
            "replayed": replayed,
            "back": f"/p/{practice_id}/event-log",
        }
        if request.htmx:
            response = page("_replay_result.html", **context)
            response.headers["HX-Trigger"] = "events-changed"
            return response
        return page("replay_result.html", **context)

    @get("/p/{practice_id:uuid}/sync-requests")
    async def sync_panel(
        request: HTMXRequest, practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            sync = await read_sync(conn, practice_id)
        return page(
            "_sync.html" if request.htmx else "sync.html",
            identity=identity,
            practice=practice,
            **sync,
        )

    @post("/p/{practice_id:uuid}/sync-requests")
    async def sync_now(
        request: HTMXRequest, practice_id: uuid.UUID, identity: Identity
    ) -> Template:
        message, ok, status = None, None, 200
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
            # the api decides (owners and admins only, one open request per account)
            outcome = await try_write(
                conn,
                "select request_id, mx_merchant_id, created "
                "from api.request_sync(%s) order by mx_merchant_id",
                (practice_id,),
            )
            rows = [] if isinstance(outcome, Refused) else outcome
            if isinstance(outcome, Refused):
                if outcome.status == 404:
                    raise NotFoundException("no such practice")
                if outcome.status == 403:
                    raise PermissionDeniedException(outcome.message)
                message, status = outcome.message, outcome.status
            if rows:
                asked = [str(r["mx_merchant_id"]) for r in rows if r["created"]]
                waiting = [str(r["mx_merchant_id"]) for r in rows if not r["created"]]
                ok = f"Sync requested for merchant {', '.join(asked)}."
                if waiting:
                    ok += f" Merchant {', '.join(waiting)} already had one pending."
            sync = await read_sync(conn, practice_id)
        return page(
            "_sync.html" if request.htmx else "sync.html",
            status,
            identity=identity,
            practice=practice,
            message=message,
            ok=ok,
            **sync,
        )

    return [events_page, event_page, replay, sync_panel, sync_now]
