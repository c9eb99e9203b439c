"""Routes: a patient's page and the invoice follow-up edits on it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.response import Template
from psycopg.types.json import Jsonb

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import fetch_all, fetch_one
from dashboard.pages import Refused, page, try_write
from dashboard.reads import (
    read_practice,
)
from dashboard.runtime import Runtime


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: a patient's page and the invoice follow-up edits on it."""

    @get("/p/{practice_id:uuid}/patients/{patient_id:uuid}")
    async def patient_page(
        practice_id: uuid.UUID, patient_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_practice(conn, practice_id)
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
            practice = await read_practice(conn, practice_id)
            found = await fetch_one(
                conn,
                "select id from api.invoices where id = %s and practice_id = %s",
                (invoice_id, practice_id),
            )
            if found is None:
                raise NotFoundException("no such invoice")
            message, status, ok = None, 200, None
            outcome = await try_write(
                conn, "select api.update_invoice_followup(%s, %s)", (invoice_id, Jsonb(changes))
            )
            if isinstance(outcome, Refused):
                message, status = outcome.message, outcome.status
            else:
                ok = "Saved"
            invoice = await fetch_one(
                conn, "select * from api.invoices where id = %s", (invoice_id,)
            )
        return page(
            "_followup.html", status, practice=practice, invoice=invoice, message=message, ok=ok
        )

    return [patient_page, invoice_followup]
