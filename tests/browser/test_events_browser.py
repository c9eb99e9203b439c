"""The Events page in a real browser: an owner filters the webhook events, replays a
selection and one event (the running worker processes them again), and asks for "sync now",
watching the request go from pending to done as the worker's scheduler carries it out."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_tab, sign_in, start_worker
from tests.support.dashboard import DashboardServer, start_dashboard
from tests.support.dashboard_fixtures import Dash


@pytest.fixture(scope="module")
def server(dash: Dash, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    """A dashboard with Secure cookies and a worker process whose scheduler serves sync
    requests (its periodic jobs wait an hour, out of the way)."""
    server = start_dashboard(dash.dashboard_db_url, dashboard_cookie_secure=True)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = start_worker(
        dash.logins["worker"],
        dash.standin.base_url,
        log,
        SCHEDULER_ENABLED="true",
        SCHEDULER_INITIAL_DELAY_SECONDS="3600",
        SYNC_REQUEST_POLL_SECONDS="0.5",
    )
    try:
        yield server
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()


@pytest.fixture
def page(browser: Browser, server: DashboardServer) -> Iterator[Page]:
    with open_tab(browser, server.base_url, timeout_ms=15_000) as tab:
        yield tab


def wait_until_processed(dash: Dash, ids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select count(*) from app.webhook_events where id = any(%s) "
                "and status = 'processed'",
                (ids,),
            ).fetchone()
            if row and row[0] == len(ids):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"events {ids} not processed again")
            time.sleep(0.2)


def test_an_owner_replays_events_and_syncs_now(page: Page, dash: Dash) -> None:
    a = dash.world.a
    with psycopg.connect(dash.owner_url) as conn:
        first, second = (
            r[0]
            for r in conn.execute(
                "select id from app.webhook_events where practice_id = %s "
                "and status = 'processed' order by id limit 2",
                (a.id,),
            ).fetchall()
        )
    sign_in(page, dash.world.users["owner_a"])
    page.get_by_test_id("nav-events").click()
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    events = page.get_by_test_id("events")
    expect(events).to_be_visible()

    # filter: declined payments only, then every event again
    page.get_by_test_id("event-type").select_option("PaymentFail")
    expect(page).to_have_url(re.compile(r"type=PaymentFail"))
    expect(page.get_by_test_id("event-row")).to_have_count(1)
    page.get_by_test_id("event-type").select_option("")
    expect(page.locator(f"#event-{first}")).to_be_visible()

    # replay a selection
    page.get_by_test_id(f"select-{first}").check()
    page.get_by_test_id(f"select-{second}").check()
    page.get_by_test_id("replay-selected").click()
    expect(page.get_by_test_id("replay-result")).to_contain_text("2 of 2 events queued again")
    # the message stays when the list reloads; the running worker processes both again
    page.get_by_test_id("event-type").select_option("PaymentSuccess")
    expect(page).to_have_url(re.compile(r"type=PaymentSuccess"))
    expect(page.get_by_test_id("replay-result")).to_contain_text("2 of 2 events queued again")
    wait_until_processed(dash, [first, second])
    page.reload()
    expect(page.get_by_test_id(f"event-status-{first}")).to_have_text("processed")

    # one event: its page, its replay, its history
    page.goto(f"/p/{a.id}/event-log/{first}")
    expect(page.get_by_test_id("payload")).to_contain_text('"id"')
    expect(page.get_by_test_id("replays")).to_contain_text("you")
    page.get_by_test_id("replay-one").click()
    expect(page.get_by_test_id("replay-result")).to_contain_text("1 of 1 event queued again")
    page.reload()
    expect(page.get_by_test_id("replays").locator("tbody tr")).to_have_count(2)

    # sync now: pending, then done as the worker's scheduler carries it out
    dash.standin.state.create_sale(a.mx_merchant_id, lines=[{"product_name": "Lab", "price": "9"}])
    page.goto(f"/p/{a.id}/event-log")
    page.get_by_test_id("sync-now").click()
    expect(page.get_by_test_id("sync-ok")).to_contain_text(
        f"Sync requested for merchant {a.mx_merchant_id}"
    )
    status = page.get_by_test_id("sync-request-status").first
    expect(status).to_have_text("done", timeout=30_000)  # the panel polls until it finishes
    expect(page.get_by_test_id("sync-now")).to_be_enabled()
    expect(page.get_by_test_id("sync-runs")).to_contain_text("request")
