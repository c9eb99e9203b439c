"""The dashboard in a real browser (Chromium through Playwright): sign in, switch tabs,
filter, search, edit a workflow field and find it kept after a reload, watch a membership
change live after a webhook is posted to the running webhook and processed by the running
worker, export CSV, sign out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_tab, sign_in, start_worker
from tests.support.dashboard import DashboardServer, start_dashboard
from tests.support.dashboard_fixtures import Dash
from tests.support.webhook_server import WebhookServer, start_webhook


@pytest.fixture(scope="module")
def services(
    dash: Dash, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DashboardServer, WebhookServer]]:
    """A dashboard with Secure cookies (Chromium treats localhost as secure), the webhook
    and a worker process."""
    server = start_dashboard(dash.dashboard_db_url, dashboard_cookie_secure=True)
    webhook = start_webhook(dash.logins["webhook"])
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = start_worker(dash.logins["worker"], dash.standin.base_url, log)
    try:
        yield server, webhook
    finally:
        worker.terminate()
        worker.wait(30)
        webhook.stop()
        server.stop()


@pytest.fixture
def page(browser: Browser, services: tuple[DashboardServer, WebhookServer]) -> Iterator[Page]:
    with open_tab(browser, services[0].base_url, accept_downloads=True) as tab:
        yield tab


def row_of(page: Page, name: str, programme: str) -> object:
    return page.locator("tr", has=page.get_by_role("link", name=name)).filter(has_text=programme)


def test_a_day_at_the_front_desk(
    page: Page, dash: Dash, services: tuple[DashboardServer, WebhookServer]
) -> None:
    a = dash.world.a
    sign_in(page, dash.world.users["owner_a"])
    table = page.get_by_test_id("memberships")
    expect(table).to_contain_text("Alice Archer")

    # tabs
    page.locator('[data-tab="Cancellations"]').click()
    expect(page).to_have_url(re.compile(r"tab=cancellations"))
    expect(page.get_by_test_id("empty")).to_be_visible()
    page.locator('[data-tab="All"]').click()
    expect(table).to_contain_text("Adam Abbot")

    # filter by status, then clear it
    page.get_by_label("Past due").check()
    expect(page).to_have_url(re.compile(r"status=past_due"))
    expect(page.get_by_test_id("memberships")).to_contain_text("Adam Abbot")
    expect(page.get_by_test_id("memberships")).not_to_contain_text("Alice Archer")
    page.get_by_label("Past due").uncheck()

    # the programme filter, then a status within it (one tab parameter, not two)
    page.get_by_test_id("programme-filter").select_option(label="Weight Loss")
    expect(page).to_have_url(re.compile(r"tab=[0-9a-f-]{36}"))
    expect(page.get_by_test_id("memberships")).not_to_contain_text("Testosterone")
    page.get_by_label("Active", exact=True).check()
    expect(page.get_by_test_id("memberships")).to_contain_text("Arthur Ames")
    expect(page.get_by_test_id("memberships")).not_to_contain_text("Adam Abbot")
    page.get_by_label("Active", exact=True).uncheck()
    page.get_by_test_id("programme-filter").select_option("all")

    # search
    page.get_by_label("Search patient name").fill("ali")
    expect(page).to_have_url(re.compile(r"q=ali"))
    expect(page.get_by_test_id("patient-link")).to_have_count(2)  # Alice: TRT and the lab line
    expect(page.get_by_test_id("memberships")).not_to_contain_text("Adam Abbot")

    # CSV of the current filter (the search, applied without a reload)
    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    csv = Path(download_info.value.path()).read_text()
    assert csv.startswith("patient_name,programme,status")
    assert "Alice Archer" in csv
    assert "Adam Abbot" not in csv

    # an inline edit, kept after a reload
    trt = page.locator("tr", has_text="Alice Archer").filter(has_text="TRT")
    trt.get_by_test_id("referral").select_option("refer_a_friend")
    expect(
        page.locator("tr", has_text="Alice Archer").filter(has_text="TRT").get_by_test_id("row-ok")
    ).to_have_text("Saved")
    page.reload()
    expect(
        page.locator("tr", has_text="Alice Archer")
        .filter(has_text="TRT")
        .get_by_test_id("referral")
    ).to_have_value("refer_a_friend")

    # a status action with its reason, and a note: each row's controls post to that row's URL
    page.goto(f"/p/{a.id}/memberships")  # every membership (the search above is cleared)
    amy = page.locator("tr", has_text="Amy Avery").filter(has_text="TRT")
    amy.locator("summary", has_text="Change").click()
    amy.get_by_label("Action").select_option("pause")
    amy.get_by_label("Reason").fill("travelling until March")
    amy.get_by_role("button", name="Apply").click()
    amy = page.locator("tr", has_text="Amy Avery").filter(has_text="TRT")
    expect(amy.get_by_test_id("status")).to_have_text("Paused")
    expect(amy.get_by_test_id("row-ok")).to_contain_text("Done: now Paused")
    arthur = page.locator("tr", has_text="Arthur Ames")
    arthur.get_by_test_id("notes").fill("prefers a call in the morning")
    arthur.get_by_test_id("notes").press("Tab")
    expect(page.locator("tr", has_text="Arthur Ames").get_by_test_id("row-ok")).to_have_text(
        "Saved"
    )
    page.reload()
    expect(page.locator("tr", has_text="Arthur Ames").get_by_test_id("notes")).to_have_value(
        "prefers a call in the morning"
    )
    expect(
        page.locator("tr", has_text="Amy Avery").filter(has_text="TRT").get_by_test_id("status")
    ).to_have_text("Paused")

    # live: MX declines Alice's renewal; the webhook records it, the worker applies it, the
    # open page shows it without a reload
    expect(
        page.locator("tr", has_text="Alice Archer").filter(has_text="TRT").get_by_test_id("status")
    ).to_have_text("Active")
    page.wait_for_timeout(300)  # the event stream is connected (it opened with the page)
    declined = dash.standin.state.create_sale(
        a.mx_merchant_id, contract_id=a.contracts["Alice Archer"], declined=True
    )
    webhook = services[1]
    posted = httpx.post(
        f"{webhook.base_url}/webhooks/mx/{a.token}", json=declined["webhook"], timeout=10
    )
    assert posted.status_code == 200, posted.text
    expect(
        page.locator("tr", has_text="Alice Archer").filter(has_text="TRT").get_by_test_id("status")
    ).to_have_text("Past due", timeout=15_000)

    # patient detail
    page.locator("tr", has_text="Alice Archer").filter(has_text="TRT").get_by_test_id(
        "patient-link"
    ).click()
    expect(page.get_by_test_id("patient-name")).to_have_text("Alice Archer")
    expect(page.get_by_test_id("history").first).to_contain_text("Past due")

    # sign out: the session is over
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    page.goto(f"/p/{a.id}/memberships")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))


def test_another_practice_sees_none_of_it(page: Page, dash: Dash) -> None:
    sign_in(page, dash.world.users["staff_b"])
    expect(page.get_by_test_id("memberships")).to_contain_text("Bob Baker")
    expect(page.get_by_test_id("memberships")).not_to_contain_text("Alice Archer")
    page.goto(f"/p/{dash.world.a.id}/memberships")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
