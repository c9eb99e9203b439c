"""Shared page helpers: rendering, safe redirects, database refusals as messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.response import Template

from dashboard.db import Conn, fetch_all

PRACTICE_COOKIE: Final = "mxd_practice"


class NotSignedIn(Exception):
    """The visitor has no valid session: to the sign-in page."""


@dataclass(frozen=True)
class Refused:
    """The database refused a change (a rule, a bad value): said to the user, nothing changed."""

    message: str
    status: int = 422


def page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(template_name=name, context=context, status_code=status)


def safe_next(value: str | None) -> str:
    """Only a local path (no scheme, no //host) may be a redirect target."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client and request.client.host else "unknown"


def db_message(exc: psycopg.Error) -> str:
    diag = exc.diag.message_primary if exc.diag else None
    return (diag or str(exc)).split("\n")[0][:300]


def refusal_of(exc: psycopg.Error) -> Refused:
    """A database error caused by the request: a clear message, never a 500."""
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        if "row-level security" in db_message(exc):  # a write policy's WITH CHECK: the role
            return Refused("Not allowed: your role in this practice may not change this.", 403)
        return Refused(f"Not allowed: {db_message(exc)}", 403)
    if isinstance(exc, psycopg.errors.NoDataFound):
        return Refused("Not found", 404)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return Refused("That value is not one of this practice's choices.", 422)
    return Refused(db_message(exc), 422)


async def try_write(
    conn: Conn,
    sql: str,
    params: Any,
    messages: Mapping[type[psycopg.Error], str] | None = None,
) -> list[dict[str, Any]] | Refused:
    """One api write in a savepoint: the rows it gives back, or why it was refused (nothing
    changed; the request's transaction lives on to render the page again). ``messages`` say a
    known refusal in the page's words; a lost connection is no refusal and goes on up."""
    try:
        async with conn.transaction():
            return await fetch_all(conn, sql, params)
    except psycopg.errors.Error as exc:
        if isinstance(exc, psycopg.OperationalError):
            raise
        for kind, message in (messages or {}).items():
            if isinstance(exc, kind):
                return Refused(message)
        return refusal_of(exc)


async def attempt(
    conn: Conn,
    sql: str,
    params: Any,
    messages: Mapping[type[psycopg.Error], str] | None = None,
) -> dict[str, Any] | Refused:
    """``try_write`` for a form: its first row, or the refusal to show with the form. Not
    allowed and not found are no input mistakes: their error page."""
    outcome = await try_write(conn, sql, params, messages)
    if not isinstance(outcome, Refused):
        return outcome[0] if outcome else {}
    if outcome.status in (403, 404):
        raise HTTPException(status_code=outcome.status, detail=outcome.message)
    return outcome
