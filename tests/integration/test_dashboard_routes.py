"""Every dashboard route as owner, admin, staff and viewer (read-only) of practice A, staff of
practice B, a user of no practice and a signed-out visitor, over real HTTP against the real
app, database and login role. Another practice's ids in a URL, a form field or an htmx
request get a 404 and none of that practice's data."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import MEMBERS_A, OUTSIDERS, Visitor, a_names, call


def routes(dash: Dash) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, form) of every route that shows or changes practice A's data."""
    a = dash.world.a
    m, patient, invoice = a.memberships[-1], a.patients[-1], a.invoices[-1]
    base = f"/p/{a.id}"
    return [
        ("GET", f"{base}/memberships", None),
        ("GET", f"{base}/memberships?tab=cancellations&status=active&sort=last_paid_at.desc", None),
        ("GET", f"{base}/memberships/tabs", None),
        ("GET", f"{base}/memberships/export.csv", None),
        ("GET", f"{base}/memberships/{m}/row", None),
        ("POST", f"{base}/memberships/{m}/workflow", {"field": "notes", "value": "called"}),
        ("POST", f"{base}/memberships/{m}/status", {"action": "pause", "reason": "travel"}),
        ("GET", f"{base}/patients/{patient}", None),
        ("POST", f"{base}/invoices/{invoice}/followup", {"data_sent_status": "yes"}),
    ]


@pytest.mark.parametrize("role", MEMBERS_A)
def test_members_of_a_reach_every_route(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    for method, path, form in routes(dash):
        response = call(visitors[role], method, path, form)
        assert response.status_code == 200, (role, method, path, response.text[-500:])
    page = visitors[role].get(f"/p/{dash.world.a.id}/memberships?limit=100")
    for name in a_names(dash):
        assert name in page.text
    # undo the pause so that other tests see the pipeline's statuses
    m = dash.world.a.memberships[-1]
    visitors[role].post(
        f"/p/{dash.world.a.id}/memberships/{m}/status", {"action": "reactivate", "reason": "back"}
    )


@pytest.mark.parametrize("htmx", [False, True])
def test_a_viewer_reads_every_page_and_every_write_is_refused(
    dash: Dash, visitors: dict[str, Visitor], htmx: bool
) -> None:
    a = dash.world.a
    m, invoice = a.memberships[-1], a.invoices[-1]

    def state() -> tuple[Any, ...]:
        with psycopg.connect(dash.owner_url) as conn:
            row = conn.execute(
                "select m.notes, m.staff_status, m.status, i.data_sent_status "
                "from app.memberships as m, app.invoices as i where m.id = %s and i.id = %s",
                (m, invoice),
            ).fetchone()
        assert row is not None
        return tuple(row)

    before = state()
    viewer = visitors["viewer_a"]
    for method, path, form in routes(dash):
        response = call(viewer, method, path, form, htmx)
        if method == "GET":
            assert response.status_code == 200, (method, path, response.status_code)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
            assert "your role in this practice may not change this" in response.text, path
    assert state() == before  # nothing changed
    page = viewer.get(f"/p/{a.id}/memberships?limit=100")
    for name in a_names(dash):
        assert name in page.text
    # no edit controls for a viewer (the database refuses anyway, as above)
    assert "status-actions" not in page.text
    assert 'aria-label="Notes" disabled' in page.text
    patient = viewer.get(f"/p/{a.id}/patients/{a.patients[-1]}")
    assert "Save follow-up" not in patient.text
    assert "Save follow-up" in visitors["staff_a"].get(f"/p/{a.id}/patients/{a.patients[-1]}").text


@pytest.mark.parametrize("role", OUTSIDERS)
@pytest.mark.parametrize("htmx", [False, True])
def test_outsiders_get_404_and_no_data(
    dash: Dash,
    visitors: dict[str, Visitor],
    role: str,
    htmx: bool,
) -> None:
    names = a_names(dash)
    for method, path, form in [*routes(dash), ("GET", f"/p/{dash.world.a.id}/events", None)]:
        response = call(visitors[role], method, path, form, htmx)
        assert response.status_code == 404, (role, method, path, response.status_code)
        assert not any(name in response.text for name in names), (role, path)


def test_foreign_ids_inside_own_practice_urls_get_404(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a, b = dash.world.a, dash.world.b
    owner = visitors["owner_a"]
    b_names = ["Bob Baker", "Bea Brown"]
    attempts = [
        ("GET", f"/p/{a.id}/memberships/{b.memberships[0]}/row", None),
        (
            "POST",
            f"/p/{a.id}/memberships/{b.memberships[0]}/workflow",
            {"field": "notes", "value": "x"},
        ),
        (
            "POST",
            f"/p/{a.id}/memberships/{b.memberships[0]}/status",
            {"action": "pause", "reason": "x"},
        ),
        ("GET", f"/p/{a.id}/patients/{b.patients[0]}", None),
        ("POST", f"/p/{a.id}/invoices/{b.invoices[0]}/followup", {"data_sent_status": "yes"}),
        ("GET", f"/p/{a.id}/memberships?tab={b.programmes[0]}", None),  # a form field
        ("GET", f"/p/{a.id}/memberships/export.csv?tab={b.programmes[0]}", None),
        ("GET", f"/p/{b.id}/memberships/{a.memberships[0]}/row", None),
        ("GET", f"/p/{b.id}/patients/{a.patients[0]}", None),
    ]
    for htmx in (False, True):
        for method, path, form in attempts:
            response = call(owner, method, path, form, htmx)
            assert response.status_code == 404, (method, path, response.status_code)
            assert not any(n in response.text for n in b_names), path
    # nothing of B changed
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select notes, status from app.memberships where id = %s", (b.memberships[0],)
        ).fetchone()
        inv = conn.execute(
            "select data_sent_status from app.invoices where id = %s", (b.invoices[0],)
        ).fetchone()
    assert row == (None, row[1])
    assert row[1] != "paused"
    assert inv is not None
    assert inv[0] != "yes"


def test_signed_out_visitors_are_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    anonymous = visitors["anonymous"]
    for method, path, form in [
        *routes(dash),
        ("GET", "/", None),
        ("GET", "/practices", None),
        ("GET", "/auth/set-password", None),
        ("POST", "/preferences/columns", {"columns": "status"}),
    ]:
        response = call(anonymous, method, path, form)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/auth/sign-in"), path
        htmx = call(anonymous, method, path, form, htmx=True)
        assert htmx.status_code == 401
        assert htmx.headers["HX-Redirect"].startswith("/auth/sign-in")
    events = anonymous.get(f"/p/{dash.world.a.id}/events")
    assert events.status_code == 401


def test_user_of_no_practice_gets_a_page_that_says_so(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    for path in ("/", "/practices"):
        response = visitors["nobody"].get(path)
        assert response.status_code == 200
        assert "not a member of any practice" in response.text


def test_home_and_practice_switcher(dash: Dash, visitors: dict[str, Visitor]) -> None:
    response = visitors["owner_b"].get("/")
    assert response.status_code == 303
    assert response.headers["location"] == f"/p/{dash.world.b.id}/memberships"
    page = visitors["owner_b"].get("/practices")
    assert "Clinic B" in page.text
    assert "Clinic A" not in page.text


def test_csrf_is_required_on_every_form(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    for method, path, form in routes(dash):
        if method == "POST":
            response = owner.client.post(path, data=form)
            assert response.status_code == 403, path
    assert (
        httpx.post(
            f"{dash.base_url}/auth/sign-in", data={"email": "x", "password": "y"}
        ).status_code
        == 403
    )


def test_bad_filters_get_400_with_the_reason(dash: Dash, visitors: dict[str, Visitor]) -> None:
    base = f"/p/{dash.world.a.id}/memberships"
    cases = {
        "status=bogus": "status must be one of",
        "started_from=yesterday": "started_from must be a date",
        "paid_from=2026-02-01&paid_to=2026-01-01": "paid_from must not be after paid_to",
        "sort=amount": "sort must be name",
        "after=%%%": "after is not a page cursor",
        "limit=7": "limit must be one of",
        "tab=programme-x": "tab must be all",
        "review=maybe": "review must be yes or no",
        "fulfillment=drone": "fulfillment must be in_office or mail_out",
        "referral=carrier-pigeon": "is not one of this practice",
        "bogus=1": "unknown parameter",
        "q=" + "x" * 101: "longer than 100 characters",
    }
    for query, reason in cases.items():
        for path in (base, base + "/export.csv"):
            response = visitors["staff_a"].get(f"{path}?{query}")
            assert response.status_code == 400, (query, response.status_code)
            assert reason in response.text, (query, response.text[-800:])


def test_filters_sort_and_keyset_paging(dash: Dash, visitors: dict[str, Visitor]) -> None:
    staff = visitors["staff_a"]
    base = f"/p/{dash.world.a.id}/memberships"
    page = staff.get(f"{base}?q=ali", htmx=True)
    assert page.status_code == 200
    assert "Alice Archer" in page.text
    assert "Adam Abbot" not in page.text
    assert "<html" not in page.text  # an htmx request gets the fragment only
    past_due = staff.get(f"{base}?status=past_due")
    assert "Adam Abbot" in past_due.text
    assert "Alice Archer" not in past_due.text
    first = staff.get(f"{base}?limit=25&sort=name.desc")
    assert first.status_code == 200
    ids = re.findall(r'<tr id="m-([0-9a-f-]+)"', first.text)
    assert len(ids) == 25
    found = re.search(r'href="([^"]+)"[^>]*data-testid="next-page"', first.text)
    assert found is not None
    second = staff.get(html.unescape(found.group(1)))
    more = re.findall(r'<tr id="m-([0-9a-f-]+)"', second.text)
    assert 'data-testid="next-page"' not in second.text
    assert sorted(ids + more) == sorted(dash.world.a.memberships)  # every row once
    names = re.findall(r'data-testid="patient-link">([^<]+)<', first.text + second.text)
    assert names == sorted(names, key=str.lower, reverse=True)


def test_csv_export_follows_the_filter(dash: Dash, visitors: dict[str, Visitor]) -> None:
    response = visitors["admin_a"].get(f"/p/{dash.world.a.id}/memberships/export.csv?q=adam")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("patient_name,programme,status")
    assert len(lines) == 2
    assert lines[1].startswith("Adam Abbot,")


def test_workflow_edits_are_kept_and_refusals_explained(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    staff = visitors["staff_a"]
    a = dash.world.a
    m = a.memberships[1]
    url = f"/p/{a.id}/memberships/{m}"
    assert (
        staff.post(f"{url}/workflow", {"field": "google_review", "value": "yes"}, True).status_code
        == 200
    )
    assert (
        staff.post(
            f"{url}/workflow", {"field": "referral", "value": "refer_a_friend"}, True
        ).status_code
        == 200
    )
    assert (
        staff.post(
            f"{url}/workflow", {"field": "fulfillment", "value": "mail_out"}, True
        ).status_code
        == 200
    )
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select google_review_submitted, referral_source, fulfillment from app.memberships "
            "where id = %s",
            (m,),
        ).fetchone()
        audited = conn.execute(
            "select count(*) from app.workflow_audit where row_id = %s::text", (m,)
        ).fetchone()
    assert row == (True, "refer_a_friend", "mail_out")
    assert audited is not None
    assert audited[0] >= 3
    refused = staff.post(f"{url}/status", {"action": "cancel", "reason": "  "}, True)
    assert refused.status_code == 422
    assert "a reason is required" in refused.text
    bad = staff.post(f"{url}/workflow", {"field": "status", "value": "x"})
    assert bad.status_code == 400
    unknown_referral = staff.post(f"{url}/workflow", {"field": "referral", "value": "nope"}, True)
    assert unknown_referral.status_code == 422
    assert "not one of this practice" in unknown_referral.text


def test_a_live_echo_of_an_edit_keeps_its_saved_message(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    """The edit's own NOTIFY comes back as a live re-read of the row: the row the edit answered
    carries its version, and the re-read of an unchanged row is 204 (htmx keeps "Saved");
    once anything else changes the row, the re-read redraws it."""
    staff = visitors["staff_a"]
    a = dash.world.a
    m = a.memberships[2]
    url = f"/p/{a.id}/memberships/{m}"
    saved = staff.post(f"{url}/workflow", {"field": "notes", "value": "echo test"}, True)
    assert saved.status_code == 200
    assert "Saved" in saved.text
    found = re.search(r'hx-get="[^"]*/row\?v=([0-9a-f]+)"', saved.text)
    assert found, "an edited row carries its version"
    version = found.group(1)
    assert staff.get(f"{url}/row?v={version}", True).status_code == 204
    staff.post(f"{url}/workflow", {"field": "notes", "value": "changed elsewhere"}, True)
    redrawn = staff.get(f"{url}/row?v={version}", True)
    assert redrawn.status_code == 200
    assert "changed elsewhere" in redrawn.text
    assert "Saved" not in redrawn.text
    assert staff.get(f"{url}/row", True).status_code == 200  # no version: always drawn
    outsider = visitors["staff_b"].get(f"{url}/row?v={version}", True)
    assert outsider.status_code == 404  # the version reveals nothing to another practice


def test_column_choice_is_remembered_per_user(dash: Dash, visitors: dict[str, Visitor]) -> None:
    staff, owner = visitors["staff_a"], visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/memberships"
    response = staff.post("/preferences/columns", {"columns": ["status", "notes"], "next": base})
    assert response.status_code == 303
    assert response.headers["location"] == base
    mine = staff.get(base).text
    assert 'class="col-notes"' in mine
    assert 'class="col-programme"' not in mine
    theirs = owner.get(base).text
    assert 'class="col-programme"' in theirs
    assert 'class="col-notes"' in theirs  # the default shows every column
    assert staff.post("/preferences/columns", {"columns": ["ssn"]}).status_code == 400
    staff.post(
        "/preferences/columns",
        {
            "columns": [
                "programme",
                "products",
                "amount",
                "status",
                "started",
                "last_paid",
                "next_billing",
                "google_review",
                "referral",
                "fulfillment",
            ]
        },
    )


def test_patient_detail_shows_history_payments_invoices(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    with psycopg.connect(dash.owner_url) as conn:
        patient = conn.execute(
            "select id from app.patients where practice_id = %s and name = 'Adam Abbot'", (a.id,)
        ).fetchone()
    assert patient is not None
    page = visitors["staff_a"].get(f"/p/{a.id}/patients/{patient[0]}")
    assert page.status_code == 200
    assert "Adam Abbot" in page.text
    assert "Semaglutide" in page.text
    assert "$299.00" in page.text  # money as money
    assert "Past due" in page.text  # the declined renewal in the history
    assert 'data-testid="followup"' in page.text


def test_invoice_followup_edit(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    invoice = a.invoices[-1]
    url = f"/p/{a.id}/invoices/{invoice}/followup"
    response = visitors["staff_a"].post(
        url, {"data_sent_status": "yes", "data_sent_notes": "faxed", "ordered": "now"}, True
    )
    assert response.status_code == 200
    assert "Saved" in response.text
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select data_sent_status, data_sent_notes, ordered_by_provider_at is not null "
            "from app.invoices where id = %s",
            (invoice,),
        ).fetchone()
    assert row == ("yes", "faxed", True)
    assert visitors["staff_a"].post(url, {"data_sent_status": "maybe"}).status_code == 400
