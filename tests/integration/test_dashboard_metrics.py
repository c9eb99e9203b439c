"""The metrics and revenue outlook pages as every role (owner_a, admin_a, staff_a, staff_b of
another practice, nobody, anonymous): owners and admins see them, with the figures the `api`
functions give; staff get 403 from the database's refusal; another practice 404; bad input 400."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import ADMINS_A, Visitor, a_names, practice_today


def pages(dash: Dash) -> list[str]:
    base = f"/p/{dash.world.a.id}"
    return [
        f"{base}/metrics",
        f"{base}/metrics?from=2026-01-01&to=2026-12-31&programme=all",
        f"{base}/revenue",
        f"{base}/revenue?back=12&ahead=12",
    ]


def as_user(dash: Dash, role: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run `sql` as that user, the way the dashboard does (role authenticated + claims)."""
    claims = {"sub": dash.world.user_ids[role], "role": "authenticated"}
    with psycopg.connect(dash.owner_url) as conn:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        return conn.execute(sql, params).fetchall()


def cells(page: str, testid: str) -> list[list[str]]:
    """The figures table's rows, each a list of its cells' text."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', page, re.S)
    assert table, testid
    body = table.group(1).split("<tbody>")[1]
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.parametrize("role", ADMINS_A)
def test_owners_and_admins_see_metrics_from_the_database(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    for path in pages(dash):
        response = visitors[role].get(path)
        assert response.status_code == 200, (role, path, response.text[-400:])
    today = practice_today(dash)
    start = today.replace(day=1)
    page = (
        visitors[role]
        .get(f"/p/{dash.world.a.id}/metrics?from={start.isoformat()}&to={today.isoformat()}")
        .text
    )
    for chart in ("active", "mrr", "flow", "churn"):
        assert f'data-chart="{chart}"' in page
    assert 'href="#definitions"' in page
    assert 'id="definitions"' in page
    # the figures are api.practice_metrics's for the same period (one month: one point)
    (total,) = as_user(
        dash,
        role,
        "select mrr, active_at_end, new_members from api.practice_metrics(%s, %s, %s) "
        "where category_id is null",
        (dash.world.a.id, start, today),
    )
    assert total[1] > 0  # the world's members are active this month
    mrr_row = cells(page, "figures-mrr")[-1]
    assert mrr_row[1] == f"${total[0]:,.2f}"
    flow_row = cells(page, "figures-flow")[-1]
    assert int(flow_row[1]) == total[2]
    # one programme: only its line, its figures
    programmes = as_user(
        dash,
        role,
        "select category_id, category_name, active_at_end from api.practice_metrics(%s, %s, %s) "
        "where category_id is not null and active_at_end > 0",
        (dash.world.a.id, start, today),
    )
    chosen = programmes[0]
    one = visitors[role].get(
        f"/p/{dash.world.a.id}/metrics?from={start.isoformat()}&to={today.isoformat()}"
        f"&programme={chosen[0]}"
    )
    assert one.status_code == 200
    active = cells(one.text, "figures-active")
    assert active[-1][1:] == [str(chosen[2])]


@pytest.mark.parametrize("role", ADMINS_A)
def test_revenue_outlook_shows_the_database_figures(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    page = visitors[role].get(f"/p/{dash.world.a.id}/revenue?back=3&ahead=3").text
    rows = as_user(
        dash,
        role,
        "select month_start, collected, expected from api.revenue_outlook(%s, 3, 3) "
        "where is_total order by 1",
        (dash.world.a.id,),
    )
    expected = sum((r[2] for r in rows), Decimal(0))
    collected = sum((r[1] for r in rows), Decimal(0))
    assert expected > 0
    assert collected > 0
    assert f'data-testid="expected-total">${expected:,.2f}<' in page
    this_month = practice_today(dash).replace(day=1)
    coming = cells(page, "figures-expected")
    assert [r[-1] for r in coming] == [f"${r[2]:,.2f}" for r in rows if r[0] >= this_month]
    past = cells(page, "figures-collected")
    assert [r[-1] for r in past] == [f"${r[1]:,.2f}" for r in rows if r[0] <= this_month]


@pytest.mark.parametrize("role", ["staff_a", "viewer_a"])
def test_staff_are_refused_by_the_database(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    names = a_names(dash)
    for path in pages(dash):
        response = visitors[role].get(path)
        assert response.status_code == 403, (path, response.status_code)
        assert "owners and admins" in response.text
        assert not any(name in response.text for name in names)
    memberships = visitors[role].get(f"/p/{dash.world.a.id}/memberships").text
    assert 'data-testid="nav-metrics"' not in memberships
    owner = visitors["owner_a"].get(f"/p/{dash.world.a.id}/memberships").text
    assert 'data-testid="nav-metrics"' in owner
    assert 'data-testid="nav-revenue"' in owner


@pytest.mark.parametrize("role", ["staff_b", "nobody"])
def test_outsiders_get_404(dash: Dash, visitors: dict[str, Visitor], role: str) -> None:
    for path in pages(dash):
        response = visitors[role].get(path)
        assert response.status_code == 404, (role, path, response.status_code)
        assert "$" not in re.sub(r"<script.*?</script>", "", response.text, flags=re.S)


def test_anonymous_is_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    for path in pages(dash):
        response = visitors["anonymous"].get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/auth/sign-in")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("from=2026-02-30", "from must be a date"),
        ("from=2026-03-01&to=2026-02-01", "is after to"),
        ("from=2015-01-01&to=2026-01-01", "longer than 5 years"),
        ("programme=trt", "programme must be all or a programme id"),
        ("programme=00000000-0000-0000-0000-000000000000", "not one of this practice"),
        ("to=2026-01-01&to=2026-02-01", "given more than once"),
        ("sort=mrr", "unknown parameter"),
    ],
)
def test_bad_metrics_input_is_a_400(
    dash: Dash, visitors: dict[str, Visitor], query: str, reason: str
) -> None:
    response = visitors["owner_a"].get(f"/p/{dash.world.a.id}/metrics?{query}")
    assert response.status_code == 400, (query, response.status_code)
    assert reason in response.text


def test_another_practices_programme_is_a_400(dash: Dash, visitors: dict[str, Visitor]) -> None:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select id from app.categories where practice_id = %s limit 1", (dash.world.b.id,)
        ).fetchone()
    assert row is not None
    response = visitors["owner_a"].get(f"/p/{dash.world.a.id}/metrics?programme={row[0]}")
    assert response.status_code == 400
    assert "not one of this practice" in response.text


@pytest.mark.parametrize("query", ["ahead=0", "ahead=7", "back=-1", "back=x", "months=3"])
def test_bad_outlook_input_is_a_400(dash: Dash, visitors: dict[str, Visitor], query: str) -> None:
    response = visitors["owner_a"].get(f"/p/{dash.world.a.id}/revenue?{query}")
    assert response.status_code == 400, (query, response.status_code)
