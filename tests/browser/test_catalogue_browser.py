"""Programmes and products in a real browser (Chromium through Playwright): an owner opens the
page from the navigation, confirms a keyword suggestion from the Uncategorized queue, previews
a product move (how many memberships it rebuilds, before anything changes), confirms it and
sees the result; the memberships page then shows the patients in the new programme. Staff
see no link and get the 403 page. An admin's settings: a bad time zone is named and nothing
is saved, a good one is."""

from __future__ import annotations

import re

import psycopg
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.support.dashboard_fixtures import Dash


def memberships_in(dash: Dash, product: str, programme: str) -> int:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select count(distinct m.id) from app.memberships as m "
            "join app.categories as c on c.id = m.category_id and c.name = %s "
            "join app.payments as p on p.patient_id = m.patient_id "
            "join app.payment_invoices as pi on pi.payment_id = p.id "
            "join app.invoice_lines as l on l.invoice_id = pi.invoice_id and l.product_name = %s "
            "where m.practice_id = %s",
            (programme, product, dash.world.a.id),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_confirm_a_suggestion_then_move_a_product(page: Page, dash: Dash) -> None:
    a = dash.world.a
    sign_in(page, dash.world.users["owner_a"])
    page.get_by_test_id("nav-programmes").click()
    expect(page.get_by_role("heading", name="Programmes and products")).to_be_visible()

    # the queue: B12 with its suggestion, Lab Panel without one
    queue = page.get_by_test_id("queue")
    b12 = queue.locator("tr[data-product='Vitamin B12 Injection']")
    expect(b12).to_contain_text("Peptides")
    expect(b12.get_by_test_id("queue-rebuilds")).to_have_text("2 membership(s)")
    expect(queue.locator("tr[data-product='Lab Panel']")).to_contain_text("no keyword matches")

    # confirm the suggestion: the page says what it did, the queue shrinks
    b12.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("ok")).to_contain_text(
        "Vitamin B12 Injection confirmed in Peptides: 2 invoice line(s) moved, "
        "2 membership(s) rebuilt"
    )
    expect(page.get_by_test_id("queue").locator("tr[data-product]")).to_have_count(1)
    expect(
        page.get_by_test_id("products").locator("tr[data-product='Vitamin B12 Injection']")
    ).to_contain_text("Peptides")
    assert memberships_in(dash, "Vitamin B12 Injection", "Peptides") == 2

    # move Lab Panel to Other: the preview says how many memberships it rebuilds first
    lab = page.get_by_test_id("queue").locator("tr[data-product='Lab Panel']")
    lab.get_by_test_id("move-to").select_option(label="Other")
    lab.get_by_test_id("preview-move").click()
    preview = page.get_by_test_id("move-preview")
    expect(preview).to_contain_text("Move Lab Panel from Uncategorized to Other?")
    rebuilt = preview.get_by_test_id("preview-rebuilt")
    expect(rebuilt).to_have_text(re.compile(r"^\d+$"))
    count = rebuilt.inner_text()
    assert int(count) >= 3  # Alice, Amy and Ann paid for it
    assert memberships_in(dash, "Lab Panel", "Other") == 0  # nothing moved yet
    preview.get_by_test_id("confirm-move").click()
    expect(page.get_by_test_id("ok")).to_contain_text(
        f"Lab Panel moved to Other: 3 invoice line(s) moved, {count} membership(s) rebuilt"
    )
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.get_by_test_id("changes")).to_contain_text("Lab Panel")
    assert memberships_in(dash, "Lab Panel", "Other") == 3

    # the memberships page lists Alice in Other now
    page.goto(f"/p/{a.id}/memberships?q=alice")
    expect(page.get_by_test_id("memberships")).to_contain_text("Other")


def test_staff_have_no_link_and_get_403(page: Page, dash: Dash) -> None:
    sign_in(page, dash.world.users["staff_a"])
    expect(page.get_by_test_id("nav-programmes")).to_have_count(0)
    page.goto(f"/p/{dash.world.a.id}/programmes")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_settings_refuse_a_bad_time_zone_then_save(page: Page, dash: Dash) -> None:
    a = dash.world.a
    sign_in(page, dash.world.users["admin_a"])
    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_label("Lapse period (days)").fill("45")
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("message")).to_contain_text('unknown time zone "Mars/Olympus"')
    expect(page.get_by_label("Time zone")).to_have_value("Mars/Olympus")  # kept as typed
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select timezone, lapse_days from app.practices where id = %s", (a.id,)
        ).fetchone()
    assert row == ("America/Chicago", 30)  # nothing saved, not even the good field

    page.get_by_label("Time zone").fill("America/Denver")
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("ok")).to_have_text("Settings saved.")
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select timezone, lapse_days from app.practices where id = %s", (a.id,)
        ).fetchone()
    assert row == ("America/Denver", 45)
