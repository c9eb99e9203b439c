"""Error pages: how each failure (not signed in, bad query, database down or refusing) is shown."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

from dashboard import query as q
from dashboard.auth import AuthUnavailable
from dashboard.db import DatabaseUnavailable
from dashboard.pages import NotSignedIn, refusal_of
from dashboard.session import (
    identity_of,
)

log = logging.getLogger("dashboard")


def exception_handlers() -> ExceptionHandlersMap:
    """Each failure to its page (a fragment for htmx requests)."""

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
        refusal = refusal_of(exc)
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

    return {
        NotSignedIn: not_signed_in,
        q.BadQuery: bad_query,
        DatabaseUnavailable: unavailable,
        AuthUnavailable: unavailable,
        PoolTimeout: unavailable,
        HTTPException: http_error,
        psycopg.Error: database_error,
        Exception: internal_error,
    }
