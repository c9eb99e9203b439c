"""Database helpers of the operator commands: rows as dicts, SQL errors as one-line errors."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row

from worker.ops.errors import CommandError

Params = Sequence[Any] | Mapping[str, Any] | None


def operator_database_url() -> str:
    """Operator commands run as the database owner (on Supabase: the postgres role)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise CommandError("DATABASE_URL is not set (the owner role's connection URL)")
    return url


def connect() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(operator_database_url(), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot connect to the database: {str(exc).strip()}") from exc


def fetch_all(
    conn: psycopg.Connection[Any], query: LiteralString, params: Params = None
) -> list[dict[str, Any]]:
    """Rows of ``query`` as dicts (column name -> value)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def fetch_one(
    conn: psycopg.Connection[Any], query: LiteralString, params: Params = None
) -> dict[str, Any]:
    rows = fetch_all(conn, query, params)
    if not rows:
        raise CommandError("the database returned no row")
    return rows[0]


def scalar(conn: psycopg.Connection[Any], query: LiteralString, params: Params = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def describe(exc: psycopg.Error) -> str:
    """The server's one-line message of a database error and its hint, when it gives one
    (never the query or its values)."""
    diag = getattr(exc, "diag", None)
    message = getattr(diag, "message_primary", None) if diag is not None else None
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    text = message or str(exc).strip().splitlines()[0]
    return f"{text} ({hint})" if hint else text


@contextmanager
def operator_session() -> Iterator[psycopg.Connection[Any]]:
    """A connection as the database owner; one transaction, committed on success. Database
    errors become ``CommandError`` with the server's message."""
    try:
        with connect() as conn:
            yield conn
    except psycopg.Error as exc:
        raise CommandError(describe(exc)) from exc
