"""The metrics and revenue outlook pages in Chromium with every request off the dashboard's
own host refused (no network): the charts are drawn by Chart.js from node_modules, from the
same figures as the tables under them, and those are the database's."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import open_tab, sign_in
from tests.support.dashboard import DashboardServer
from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import practice_today


@pytest.fixture
def page(browser: Browser, server: DashboardServer) -> Iterator[Page]:
    base = server.base_url.replace("127.0.0.1", "localhost")
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with open_tab(browser, server.base_url) as tab:
        tab.context.route("**/*", only_local)  # before the tab loads anything
        yield tab
    assert outside == [], f"requests off the dashboard's host: {outside}"


def chart_data(page: Page, name: str) -> dict[str, list[Any]]:
    """The datasets Chart.js holds for that canvas, by label."""
    canvas = page.locator(f'canvas[data-chart="{name}"][data-drawn="1"]')
    expect(canvas).to_be_visible()
    data: dict[str, list[Any]] = canvas.evaluate(
        "c => Object.fromEntries(Chart.getChart(c).data.datasets.map(d => [d.label, d.data]))"
    )
    return data


def column(page: Page, testid: str, index: int) -> list[str]:
    return page.get_by_test_id(testid).locator(f"tbody tr > :nth-child({index})").all_inner_texts()


def as_owner(dash: Dash, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    claims = {"sub": dash.world.user_ids["owner_a"], "role": "authenticated"}
    with psycopg.connect(dash.owner_url) as conn:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        return conn.execute(sql, params).fetchall()


def test_metrics_charts_are_drawn_from_the_database(page: Page, dash: Dash) -> None:
    a = dash.world.a
    sign_in(page, dash.world.users["owner_a"])
    page.get_by_test_id("nav-metrics").click()
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    for name in ("active", "mrr", "flow", "churn"):
        chart_data(page, name)  # every chart drawn

    today = practice_today(dash)
    start = today.replace(day=1)
    page.get_by_label("From").fill(start.isoformat())
    page.get_by_label("To").fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"from={start.isoformat()}"))

    ((mrr, new_members, active),) = as_owner(
        dash,
        "select mrr, new_members, active_at_end from api.practice_metrics(%s, %s, %s) "
        "where category_id is null",
        (a.id, start, today),
    )
    assert active > 0
    drawn = chart_data(page, "mrr")
    assert drawn["MRR"] == [float(mrr)]
    assert column(page, "figures-mrr", 2) == [f"${mrr:,.2f}"]
    assert chart_data(page, "flow")["New"] == [new_members]
    assert column(page, "figures-flow", 2) == [str(new_members)]

    # one programme: its line alone, its figure
    programmes = as_owner(
        dash,
        "select category_id, category_name, active_at_end from api.practice_metrics(%s, %s, %s) "
        "where category_id is not null and active_at_end > 0 order by category_name",
        (a.id, start, today),
    )
    chosen = programmes[0]
    page.get_by_test_id("metrics-programme").select_option(str(chosen[0]))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"programme={chosen[0]}"))
    assert chart_data(page, "active") == {chosen[1]: [chosen[2]]}

    # bad input: a clear 400 page, nothing drawn
    page.get_by_label("From").fill(today.isoformat())
    page.get_by_label("To").fill((start - dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("is after to")).to_be_visible()
    assert page.locator("canvas").count() == 0


def test_revenue_outlook_chart_matches_its_figures(page: Page, dash: Dash) -> None:
    sign_in(page, dash.world.users["admin_a"])
    page.get_by_test_id("nav-revenue").click()
    expect(page.get_by_role("heading", name="Revenue outlook")).to_be_visible()
    page.get_by_label("Expected, months ahead").select_option("3")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"ahead=3"))
    drawn = chart_data(page, "outlook")
    rows = as_owner(
        dash,
        "select collected, expected from api.revenue_outlook(%s, 6, 3) where is_total "
        "order by month_start",
        (dash.world.a.id,),
    )
    assert drawn["Expected"] == [float(r[1]) for r in rows]
    assert drawn["Collected"] == [float(r[0]) for r in rows]
    expected = sum((r[1] for r in rows), Decimal(0))
    assert expected > 0
    expect(page.get_by_test_id("expected-total")).to_have_text(f"${expected:,.2f}")
