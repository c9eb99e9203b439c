"""The payments and contracts pages in a real browser (Chromium through Playwright): filter
the payments and watch the totals change without a reload, export the filter as CSV, switch
to the recurring view, open a contract and its payments."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_tab, sign_in
from tests.support.dashboard import DashboardServer
from tests.support.dashboard_fixtures import Dash


@pytest.fixture
def page(browser: Browser, server: DashboardServer) -> Iterator[Page]:
    with open_tab(browser, server.base_url, accept_downloads=True) as tab:
        yield tab


def test_filter_payments_see_totals_change_and_export(page: Page, dash: Dash) -> None:
    a = dash.world.a
    with psycopg.connect(dash.owner_url) as conn:
        ((count, declines),) = conn.execute(
            "select count(*), count(*) filter (where status = 'Declined') "
            "from app.payments where practice_id = %s",
            (a.id,),
        ).fetchall()
    sign_in(page, dash.world.users["admin_a"])

    page.get_by_test_id("nav-payments").click()
    expect(page.get_by_role("heading", name="Payments")).to_be_visible()
    expect(page.get_by_test_id("total-count")).to_have_text(f"{count:,}")

    # a filter swaps the results and the totals in place (htmx), and keeps them in the URL
    page.get_by_test_id("kind-filter").select_option("decline")
    expect(page).to_have_url(re.compile(r"kind=decline"))
    expect(page.get_by_test_id("total-count")).to_have_text(str(declines))
    expect(page.get_by_test_id("total-sales")).to_have_text("$0.00")
    rows = page.get_by_test_id("payment-row")
    expect(rows).to_have_count(declines)
    expect(rows.first).to_contain_text("Adam Abbot")

    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    exported = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert [r["kind"] for r in exported] == ["decline"] * declines

    # the patient search narrows the totals again; the recurring view keeps the filter
    page.get_by_label("Search patient name").fill("amy")
    expect(page.get_by_test_id("total-refunds")).to_have_text("$0.00")
    page.get_by_test_id("kind-filter").select_option("refund")
    expect(page.get_by_test_id("total-refunds")).to_have_text("$50.00")
    expect(page.get_by_test_id("total-net")).to_have_text("-$50.00")
    page.get_by_test_id("view-recurring").click()
    expect(page).to_have_url(re.compile(r"view=recurring"))
    expect(page.get_by_test_id("payment-row")).to_have_count(1)
    page.get_by_test_id("clear-filters").click()
    expect(page).to_have_url(re.compile(r"/payments\?view=recurring$"))
    expect(page.get_by_test_id("kind-filter")).to_have_value("")

    # contracts: the list, one contract and its payments
    page.get_by_test_id("nav-contracts").click()
    expect(page.get_by_test_id("contract-row")).to_have_count(len(a.contracts))
    page.get_by_role("link", name=str(a.contracts["Adam Abbot"]), exact=True).click()
    expect(page.get_by_test_id("contract-title")).to_contain_text(str(a.contracts["Adam Abbot"]))
    expect(page.get_by_test_id("contract-payments")).to_contain_text("Declined")
