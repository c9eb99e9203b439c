"""Routes: the home redirect and the practice picker."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect, Template

from dashboard.auth import Identity
from dashboard.pages import PRACTICE_COOKIE, page
from dashboard.reads import (
    read_practices,
)
from dashboard.routes_operator import read_is_operator
from dashboard.runtime import Runtime


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: the home redirect and the practice picker."""

    @get("/")
    async def home(request: Request[Any, Any, Any], identity: Identity) -> Response[Any]:
        async with rt.user(identity) as conn:
            practices = await read_practices(conn)
            operator = not practices and await read_is_operator(conn)
        if operator:  # an operator of no practice: straight to the operator view
            return Redirect("/operator", status_code=303)
        if not practices:
            return page("no_practice.html", identity=identity)
        chosen = request.cookies.get(PRACTICE_COOKIE)
        ids = [str(p["id"]) for p in practices]
        target = chosen if chosen in ids else ids[0]
        return Redirect(f"/p/{target}/memberships", status_code=303)

    @get("/practices")
    async def practices_page(identity: Identity) -> Template:
        async with rt.user(identity) as conn:
            practices = await read_practices(conn)
            operator = await read_is_operator(conn)
        if not practices and not operator:
            return page("no_practice.html", identity=identity)
        return page(
            "practices.html",
            identity=identity,
            practices=practices,
            practice=None,
            operator=operator,
        )

    return [home, practices_page]
