"""Routes: programmes and products (owners and admins): the Uncategorized queue and its
suggestions, every product with its programme and counts, moving a product after a preview
of what it rebuilds, adding and renaming programmes, keyword rules, auto-apply.

A move runs in the request's transaction (the change-log row's trigger moves the invoice
lines and rebuilds the memberships before the insert returns), so the page shows its result
at once; the recent moves come from the change log itself.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

import psycopg
from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from psycopg.types.json import Jsonb

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import Conn, fetch_all, fetch_one
from dashboard.pages import Refused, attempt, page
from dashboard.reads import read_admin_practice
from dashboard.runtime import Runtime

ADMINS_ONLY: Final = "Only the practice's owners and admins manage programmes and products."
MAX_NAME: Final = 100
MAX_KEYWORD: Final = 100
PREVIEWS: Final = 50
TAKEN: Final = "A programme of that name exists already."
PREVIEW_SQL: Final = "select api.preview_product_move(%s, %s) as preview"
# every suggestion of the queue in one statement: all confirmed, or none
CONFIRM_ALL_SQL: Final = """
select
    count(*) as confirmed,
    coalesce(sum((c.r ->> 'lines_moved')::integer), 0) as lines_moved,
    coalesce(sum((c.r ->> 'memberships_rebuilt')::integer), 0) as memberships_rebuilt,
    coalesce(sum((c.r ->> 'memberships_removed')::integer), 0) as memberships_removed,
    coalesce(sum((c.r ->> 'memberships_kept')::integer), 0) as memberships_kept
from (
    select api.confirm_product_suggestion(p.id) as r
    from api.products as p
    join api.categories as u on u.id = p.category_id and u.kind = 'uncategorized'
    where p.practice_id = %s and p.suggested_category_id is not null
) as c
"""


def _move_summary(result: dict[str, Any]) -> str:
    return (
        f"{result['lines_moved']} invoice line(s) moved, "
        f"{result['memberships_rebuilt']} membership(s) rebuilt, "
        f"{result['memberships_removed']} removed, {result['memberships_kept']} kept"
    )


async def _product(conn: Conn, practice_id: uuid.UUID, product_id: uuid.UUID) -> dict[str, Any]:
    row = await fetch_one(
        conn,
        "select * from api.products_admin where id = %s and practice_id = %s",
        (product_id, practice_id),
    )
    if row is None:
        raise NotFoundException("no such product")
    return row


async def _category(conn: Conn, practice_id: uuid.UUID, value: str) -> dict[str, Any]:
    """A programme of this practice named by a form field (another practice's: 404)."""
    try:
        category_id = uuid.UUID(value)
    except ValueError:
        raise q.BadQuery(["choose a programme"]) from None
    row = await fetch_one(
        conn,
        "select id, name, kind from api.categories where id = %s and practice_id = %s",
        (category_id, practice_id),
    )
    if row is None:
        raise NotFoundException("no such programme")
    return row


async def catalogue_context(conn: Conn, practice: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows, read through `api` in the caller's transaction."""
    practice_id = practice["id"]
    products = await fetch_all(
        conn,
        "select * from api.products_admin where practice_id = %s order by lower(name), id",
        (practice_id,),
    )
    queue = [p for p in products if p["is_uncategorized"]]
    # what confirming each suggestion would rebuild, shown before the owner clicks (one
    # api call each: the first PREVIEWS of a long queue; the others preview on "Move")
    for item in [p for p in queue if p["suggested_category_id"] is not None][:PREVIEWS]:
        row = await fetch_one(conn, PREVIEW_SQL, (item["id"], item["suggested_category_id"]))
        item["preview"] = (row or {}).get("preview")
    categories = await fetch_all(
        conn,
        "select id, name, kind from api.categories where practice_id = %s "
        "order by kind = 'uncategorized', sort_order, name",
        (practice_id,),
    )
    rules = await fetch_all(
        conn,
        "select keyword, category_id, category_name, origin from api.category_rules "
        "where practice_id = %s order by keyword, origin",
        (practice_id,),
    )
    settings = await fetch_one(
        conn, "select auto_apply_suggestions from api.practices where id = %s", (practice_id,)
    )
    changes = await fetch_all(
        conn,
        "select x.*, p.name as product_name, f.name as from_name, t.name as to_name "
        "from api.product_category_changes as x "
        "join api.products as p on p.id = x.product_id "
        "left join api.categories as f on f.id = x.from_category_id "
        "join api.categories as t on t.id = x.to_category_id "
        "where x.practice_id = %s order by x.changed_at desc, x.id desc limit 10",
        (practice_id,),
    )
    return {
        "practice": practice,
        "products": products,
        "queue": queue,
        "suggested": [p for p in queue if p["suggested_category_id"] is not None],
        "categories": categories,
        "programmes": [c for c in categories if c["kind"] == "programme"],
        "rules": rules,
        "auto_apply": bool(settings and settings["auto_apply_suggestions"]),
        "changes": changes,
    }


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: programmes and products (owners and admins)."""

    async def render(
        conn: Conn,
        identity: Identity,
        practice: dict[str, Any],
        *,
        ok: str | None = None,
        refused: Refused | None = None,
    ) -> Template:
        context = await catalogue_context(conn, practice)
        return page(
            "programmes.html",
            refused.status if refused else 200,
            identity=identity,
            me=identity.user_id,
            message=refused.message if refused else None,
            ok=ok,
            **context,
        )

    async def respond(
        conn: Conn,
        identity: Identity,
        practice: dict[str, Any],
        outcome: dict[str, Any] | Refused,
        ok: str,
    ) -> Template:
        if isinstance(outcome, Refused):
            return await render(conn, identity, practice, refused=outcome)
        return await render(conn, identity, practice, ok=ok)

    @get("/p/{practice_id:uuid}/programmes")
    async def programmes_page(practice_id: uuid.UUID, identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            return await render(conn, identity, practice)

    @post("/p/{practice_id:uuid}/products/{product_id:uuid}/confirm")
    async def confirm_suggestion(
        practice_id: uuid.UUID, product_id: uuid.UUID, identity: Identity
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            product = await _product(conn, practice_id, product_id)
            outcome = await attempt(
                conn, "select api.confirm_product_suggestion(%s) as r", (product_id,)
            )
            ok = ""
            if not isinstance(outcome, Refused):
                ok = (
                    f"{product['name']} confirmed in {product['suggested_category_name']}: "
                    f"{_move_summary(outcome['r'])}."
                )
            return await respond(conn, identity, practice, outcome, ok)

    @post("/p/{practice_id:uuid}/products/confirm-suggested")
    async def confirm_all(practice_id: uuid.UUID, identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(conn, CONFIRM_ALL_SQL, (practice_id,))
            if isinstance(outcome, Refused):
                return await render(conn, identity, practice, refused=outcome)
            if not outcome["confirmed"]:
                return await render(conn, identity, practice, ok="No suggestion to confirm.")
            return await render(
                conn,
                identity,
                practice,
                ok=f"{outcome['confirmed']} suggestion(s) confirmed: {_move_summary(outcome)}.",
            )

    @get("/p/{practice_id:uuid}/products/{product_id:uuid}/move")
    async def move_preview(
        request: HTMXRequest, practice_id: uuid.UUID, product_id: uuid.UUID, identity: Identity
    ) -> Template:
        to = request.query_params.get("to") or ""
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            product = await _product(conn, practice_id, product_id)
            target = await _category(conn, practice_id, to)
            row = await fetch_one(conn, PREVIEW_SQL, (product_id, target["id"]))
        partial = bool(request.htmx) and not request.htmx.boosted
        return page(
            "_move_preview.html" if partial else "move.html",
            identity=identity,
            practice=practice,
            product=product,
            target=target,
            preview=(row or {}).get("preview"),
        )

    @post("/p/{practice_id:uuid}/products/{product_id:uuid}/move")
    async def move_product(
        practice_id: uuid.UUID,
        product_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            product = await _product(conn, practice_id, product_id)
            target = await _category(conn, practice_id, data.get("to", ""))
            outcome = await attempt(
                conn, "select api.set_product_category(%s, %s) as r", (product_id, target["id"])
            )
            ok = ""
            if not isinstance(outcome, Refused):
                ok = f"{product['name']} moved to {target['name']}: {_move_summary(outcome['r'])}."
            return await respond(conn, identity, practice, outcome, ok)

    @post("/p/{practice_id:uuid}/programmes")
    async def add_programme(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        name = _programme_name(data)
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(
                conn,
                "select api.add_category(%s, %s)",
                (practice_id, name),
                {psycopg.errors.UniqueViolation: TAKEN},
            )
            return await respond(conn, identity, practice, outcome, f"Programme {name} added.")

    @post("/p/{practice_id:uuid}/programmes/{category_id:uuid}/rename")
    async def rename_programme(
        practice_id: uuid.UUID,
        category_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        name = _programme_name(data)
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            category = await _category(conn, practice_id, str(category_id))
            if category["kind"] != "programme":
                return await render(
                    conn,
                    identity,
                    practice,
                    refused=Refused(
                        "Uncategorized cannot be renamed: it is where new products wait."
                    ),
                )
            outcome = await attempt(
                conn,
                "select api.rename_category(%s, %s)",
                (category["id"], name),
                {psycopg.errors.UniqueViolation: TAKEN},
            )
            return await respond(
                conn, identity, practice, outcome, f"{category['name']} renamed to {name}."
            )

    @post("/p/{practice_id:uuid}/rules")
    async def set_rule(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        keyword = " ".join((data.get("keyword") or "").split())
        if not keyword:
            raise q.BadQuery(["a keyword is required"])
        if len(keyword) > MAX_KEYWORD:
            raise q.BadQuery([f"the keyword is longer than {MAX_KEYWORD} characters"])
        chosen = data.get("category_id") or ""
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            # an empty choice suppresses a shipped keyword (no suggestion from it)
            category = await _category(conn, practice_id, chosen) if chosen else None
            outcome = await attempt(
                conn,
                "select api.set_category_rule(%s, %s, %s)",
                (practice_id, keyword, category["id"] if category else None),
            )
            ok = (
                f"Keyword “{keyword.lower()}” now suggests {category['name']}."
                if category
                else f"Keyword “{keyword.lower()}” now suggests nothing."
            )
            return await respond(conn, identity, practice, outcome, ok)

    @post("/p/{practice_id:uuid}/rules/delete")
    async def delete_rule(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        keyword = (data.get("keyword") or "").strip()
        if not keyword:
            raise q.BadQuery(["a keyword is required"])
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(
                conn, "select api.delete_category_rule(%s, %s) as found", (practice_id, keyword)
            )
            if not isinstance(outcome, Refused) and not outcome.get("found"):
                raise NotFoundException("no such keyword rule")
            return await respond(
                conn, identity, practice, outcome, f"Keyword rule “{keyword}” removed."
            )

    @post("/p/{practice_id:uuid}/programmes/auto-apply")
    async def set_auto_apply(
        practice_id: uuid.UUID,
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        value = data.get("auto_apply", "")
        if value not in ("on", "off"):
            raise q.BadQuery(["auto_apply must be on or off"])
        async with rt.user(identity) as conn:
            practice = await read_admin_practice(conn, practice_id, ADMINS_ONLY)
            outcome = await attempt(
                conn,
                "select api.update_practice_settings(%s, %s)",
                (practice_id, Jsonb({"auto_apply_suggestions": value == "on"})),
            )
            ok = (
                "New products now go straight to their suggested programme (still to confirm)."
                if value == "on"
                else "New products now wait in Uncategorized until confirmed."
            )
            return await respond(conn, identity, practice, outcome, ok)

    return [
        programmes_page,
        confirm_suggestion,
        confirm_all,
        move_preview,
        move_product,
        add_programme,
        rename_programme,
        set_rule,
        delete_rule,
        set_auto_apply,
    ]


def _programme_name(data: dict[str, str]) -> str:
    name = " ".join((data.get("name") or "").split())
    if not name:
        raise q.BadQuery(["a programme name is required"])
    if len(name) > MAX_NAME:
        raise q.BadQuery([f"the programme name is longer than {MAX_NAME} characters"])
    return name
