"""The Team page in a real browser (Chromium through Playwright): the owner invites an
address as a viewer, the worker sends the invitation (as the worker's own login role, the
code of ``member add``), the owner finds the invited person on the page and changes their
role; a viewer sees the memberships without edit controls."""

from __future__ import annotations

import uuid

import psycopg
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.support.dashboard_fixtures import Dash
from worker.ops.invitations import process_pending


def role_in_db(dash: Dash, email: str) -> str | None:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select m.role from app.practice_members as m join auth.users as u "
            "on u.id = m.user_id where m.practice_id = %s and u.email = %s",
            (dash.world.a.id, email),
        ).fetchone()
    return row[0] if row else None


def test_invite_someone_then_change_their_role(page: Page, dash: Dash) -> None:
    email = f"new-nurse-{uuid.uuid4().hex[:6]}@example.test"
    sign_in(page, dash.world.users["owner_a"])
    page.get_by_test_id("nav-team").click()
    expect(page.get_by_role("heading", name="Team")).to_be_visible()
    expect(page.get_by_test_id("team")).to_contain_text(dash.world.users["viewer_a"])

    # the invitation: recorded at once, sent by the worker
    page.get_by_test_id("invite-email").fill(email)
    page.get_by_test_id("invite-role").select_option("viewer")
    page.get_by_test_id("invite-submit").click()
    expect(page.get_by_test_id("team-ok")).to_contain_text("Invitation queued")
    row = page.locator(f'tr[data-email="{email}"]')
    expect(row.get_by_test_id("state")).to_have_text("Invitation pending")
    done = process_pending(dash.logins["worker"])  # the worker's login role, as in production
    assert [(d.email, d.outcome) for d in done] == [(email, "added")]
    page.reload()
    row = page.locator(f'tr[data-email="{email}"]')
    expect(row.get_by_test_id("state")).to_have_text("Invited")
    expect(row.get_by_test_id("role-select")).to_have_value("viewer")
    assert role_in_db(dash, email) == "viewer"

    # a role change
    row.get_by_test_id("role-select").select_option("staff")
    row.get_by_test_id("role-save").click()
    expect(page.get_by_test_id("team-ok")).to_have_text("Role changed.")
    expect(page.locator(f'tr[data-email="{email}"]').get_by_test_id("role-select")).to_have_value(
        "staff"
    )
    assert role_in_db(dash, email) == "staff"

    # the last owner cannot step down: said plainly, nothing changed
    me = page.locator(f'tr[data-email="{dash.world.users["owner_a"]}"]')
    me.get_by_test_id("role-select").select_option("admin")
    me.get_by_test_id("role-save").click()
    expect(page.get_by_test_id("team-error")).to_contain_text("a practice needs an owner")
    assert role_in_db(dash, dash.world.users["owner_a"]) == "owner"


def test_a_viewer_reads_without_edit_controls(page: Page, dash: Dash) -> None:
    sign_in(page, dash.world.users["viewer_a"])
    table = page.get_by_test_id("memberships")
    expect(table).to_contain_text("Alice Archer")
    expect(table.get_by_test_id("notes").first).to_be_disabled()
    expect(table.get_by_text("Change")).to_have_count(0)
    expect(page.get_by_test_id("nav-team")).to_have_count(0)
