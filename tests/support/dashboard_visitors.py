"""The dashboard's visitors for route tests: a signed-in httpx client with its CSRF token per
user of the world (and an anonymous one), and small helpers the route tests share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from tests.support.dashboard import csrf_token, sign_in

if TYPE_CHECKING:
    from tests.support.dashboard_fixtures import Dash

# the world's users by what they may do in practice A (scripts/dev_world.py)
MEMBERS_A = ("owner_a", "admin_a", "staff_a")  # may edit; viewer_a reads only
ADMINS_A = ("owner_a", "admin_a")
OUTSIDERS = ("staff_b", "nobody")  # staff of practice B, a user of no practice


@dataclass
class Visitor:
    client: httpx.Client
    token: str  # CSRF

    @classmethod
    def of(cls, client: httpx.Client) -> Visitor:
        """The client with the CSRF token of its session (from the sign-in page)."""
        return cls(client, csrf_token(client.get("/auth/sign-in").text))

    def get(self, path: str, htmx: bool = False) -> httpx.Response:
        return self.client.get(path, headers={"HX-Request": "true"} if htmx else None)

    def post(
        self, path: str, data: dict[str, Any] | None = None, htmx: bool = False
    ) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(
            path, data={**(data or {}), "_csrf_token": self.token}, headers=headers
        )


def signed_in_visitors(base_url: str, users: Mapping[str, str]) -> Iterator[dict[str, Visitor]]:
    """For a fixture: every user (name -> e-mail) signed in, and ``anonymous``; closed after."""
    out = {name: Visitor.of(sign_in(base_url, email)) for name, email in users.items()}
    out["anonymous"] = Visitor.of(httpx.Client(base_url=base_url, timeout=10))
    try:
        yield out
    finally:
        for visitor in out.values():
            visitor.client.close()


def call(
    visitor: Visitor, method: str, path: str, form: dict[str, Any] | None, htmx: bool = False
) -> httpx.Response:
    if method == "GET":
        return visitor.get(path, htmx)
    return visitor.post(path, form or {}, htmx)


def owner_rows(dash: Dash, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """``sql`` as the database owner (autocommit); its rows, or [] for a statement without."""
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def a_names(dash: Dash) -> list[str]:
    """The names of practice A's patients, read from the database."""
    rows = owner_rows(
        dash, "select name from app.patients where practice_id = %s", (dash.world.a.id,)
    )
    names = [r[0] for r in rows]
    assert names, "practice A has no patients: checks on their names would pass on nothing"
    return names


def practice_today(dash: Dash) -> dt.date:
    """Today in practice A's time zone, from the database."""
    [(today,)] = owner_rows(
        dash,
        "select (now() at time zone timezone)::date from app.practices where id = %s",
        (dash.world.a.id,),
    )
    assert isinstance(today, dt.date)
    return today
