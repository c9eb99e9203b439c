"""The programmes-and-products page and the settings page (issue 11) over real HTTP: every
route as owner and admin of practice A (200), staff of A (403, nothing changed), staff of B,
a user of no practice (404, none of A's data) and a signed-out visitor (to sign-in); another
practice's ids inside A's URLs and forms (404); and what each action does and refuses."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import ADMINS_A, OUTSIDERS, Visitor, call


def one(dash: Dash, sql: str, params: tuple[Any, ...]) -> Any:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None, (sql, params)
    return row[0]


def product_id(dash: Dash, practice_id: str, name: str) -> str:
    return str(
        one(
            dash,
            "select id from app.products where practice_id = %s and name = %s",
            (practice_id, name),
        )
    )


def programme_id(dash: Dash, practice_id: str, name: str) -> str:
    return str(
        one(
            dash,
            "select id from app.categories where practice_id = %s and name = %s",
            (practice_id, name),
        )
    )


def settings_form(dash: Dash, practice_id: str, **changes: str) -> dict[str, str]:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select name, timezone, past_due_grace_days, lapse_days, auto_apply_suggestions, "
            "count_repeat_purchases, default_billing_interval from app.practices where id = %s",
            (practice_id,),
        ).fetchone()
    assert row is not None
    form = {
        "name": row[0],
        "timezone": row[1],
        "past_due_grace_days": str(row[2]),
        "lapse_days": str(row[3]),
        "default_billing_interval": row[6],
    }
    if row[4]:
        form["auto_apply_suggestions"] = "on"
    if row[5]:
        form["count_repeat_purchases"] = "on"
    return form | changes


def routes(dash: Dash, role: str = "") -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, form) of every route of both pages, for practice A; in this order each
    can run again for the next role (a rule set then deleted, a source added then removed,
    a programme of the role's own name added)."""
    a = dash.world.a
    base = f"/p/{a.id}"
    lab = product_id(dash, a.id, "Lab Panel")
    b12 = product_id(dash, a.id, "Vitamin B12 Injection")
    other = programme_id(dash, a.id, "Other")
    trt = programme_id(dash, a.id, "TRT")
    return [
        ("GET", f"{base}/programmes", None),
        ("GET", f"{base}/products/{lab}/move?to={other}", None),
        ("POST", f"{base}/products/{b12}/confirm", {}),
        ("POST", f"{base}/products/confirm-suggested", {}),
        ("POST", f"{base}/products/{lab}/move", {"to": other}),
        ("POST", f"{base}/programmes", {"name": f"Hair {role}".strip()}),
        ("POST", f"{base}/programmes/{trt}/rename", {"name": "TRT"}),
        ("POST", f"{base}/rules", {"keyword": "panel", "category_id": other}),
        ("POST", f"{base}/rules/delete", {"keyword": "panel"}),
        ("POST", f"{base}/programmes/auto-apply", {"auto_apply": "on"}),
        ("GET", f"{base}/settings", None),
        ("POST", f"{base}/settings", settings_form(dash, a.id)),
        ("POST", f"{base}/settings/referrals", {"label": "Walk in"}),
        ("POST", f"{base}/settings/referrals/delete", {"code": "walk_in"}),
    ]


def snapshot(dash: Dash) -> tuple[Any, ...]:
    """Everything the two pages can change in practice A."""
    a = dash.world.a.id
    with psycopg.connect(dash.owner_url) as conn:
        return tuple(
            conn.execute(sql, (a,)).fetchall()
            for sql in (
                "select id, category_id, category_confirmed from app.products "
                "where practice_id = %s order by id",
                "select id, name from app.categories where practice_id = %s order by id",
                "select keyword, category_id from app.category_rules where practice_id = %s "
                "order by keyword",
                "select name, timezone, past_due_grace_days, lapse_days, auto_apply_suggestions, "
                "count_repeat_purchases, default_billing_interval from app.practices where id = %s",
                "select code, label from app.referral_sources where practice_id = %s order by code",
                "select count(*) from app.product_category_changes where practice_id = %s",
            )
        )


def test_the_world_has_a_queue_with_suggestions(dash: Dash) -> None:
    with psycopg.connect(dash.owner_url) as conn:
        queue = conn.execute(
            "select p.name, s.name from app.products as p "
            "join app.categories as c on c.id = p.category_id and c.kind = 'uncategorized' "
            "left join app.categories as s on s.id = p.suggested_category_id "
            "where p.practice_id = %s order by p.name",
            (dash.world.a.id,),
        ).fetchall()
    assert queue == [("Lab Panel", None), ("Vitamin B12 Injection", "Peptides")]


@pytest.mark.parametrize("role", ["staff_a", "viewer_a"])
def test_staff_get_403_and_change_nothing(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    staff = visitors[role]
    before = snapshot(dash)
    for htmx in (False, True):
        for method, path, form in routes(dash):
            response = call(staff, method, path, form, htmx)
            assert response.status_code == 403, (method, path, response.status_code)
            if not htmx:
                assert "Only the practice" in response.text, path
    assert snapshot(dash) == before
    page = staff.get(f"/p/{dash.world.a.id}/memberships")
    assert 'data-testid="nav-programmes"' not in page.text
    assert 'data-testid="nav-settings"' not in page.text


@pytest.mark.parametrize("role", OUTSIDERS)
@pytest.mark.parametrize("htmx", [False, True])
def test_outsiders_get_404_and_no_data(
    dash: Dash, visitors: dict[str, Visitor], role: str, htmx: bool
) -> None:
    before = snapshot(dash)
    for method, path, form in routes(dash):
        response = call(visitors[role], method, path, form, htmx)
        assert response.status_code == 404, (role, method, path, response.status_code)
        for secret in ("Vitamin B12", "Lab Panel", "Clinic A", "America/Chicago"):
            assert secret not in response.text, (role, path, secret)
    assert snapshot(dash) == before


def test_signed_out_visitors_are_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    anonymous = visitors["anonymous"]
    for method, path, form in routes(dash):
        response = call(anonymous, method, path, form)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/auth/sign-in"), path
        htmx = call(anonymous, method, path, form, htmx=True)
        assert htmx.status_code == 401, path


def test_csrf_is_required(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    for method, path, form in routes(dash):
        if method == "POST":
            assert owner.client.post(path, data=form).status_code == 403, path


def test_foreign_ids_inside_own_urls_and_forms_get_404(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a, b = dash.world.a, dash.world.b
    owner = visitors["owner_a"]
    lab_a = product_id(dash, a.id, "Lab Panel")
    lab_b = product_id(dash, b.id, "Lab Panel")
    other_a = programme_id(dash, a.id, "Other")
    trt_b = programme_id(dash, b.id, "TRT")
    before_b = one(
        dash,
        "select array_agg(category_id::text order by id) from app.products where practice_id = %s",
        (b.id,),
    )
    attempts = [
        ("GET", f"/p/{a.id}/products/{lab_b}/move?to={other_a}", None),
        ("POST", f"/p/{a.id}/products/{lab_b}/move", {"to": other_a}),
        ("POST", f"/p/{a.id}/products/{lab_b}/confirm", {}),
        ("GET", f"/p/{a.id}/products/{lab_a}/move?to={trt_b}", None),  # a form field
        ("POST", f"/p/{a.id}/products/{lab_a}/move", {"to": trt_b}),
        ("POST", f"/p/{a.id}/programmes/{trt_b}/rename", {"name": "Mine now"}),
        ("POST", f"/p/{a.id}/rules", {"keyword": "x", "category_id": trt_b}),
        ("GET", f"/p/{b.id}/programmes", None),
        ("GET", f"/p/{b.id}/settings", None),
        ("POST", f"/p/{b.id}/settings", settings_form(dash, b.id, name="Taken")),
        ("POST", f"/p/{b.id}/settings/referrals/delete", {"code": "online"}),
    ]
    for htmx in (False, True):
        for method, path, form in attempts:
            response = call(owner, method, path, form, htmx)
            assert response.status_code == 404, (method, path, response.status_code)
            assert "Clinic B" not in response.text, path
    after_b = one(
        dash,
        "select array_agg(category_id::text order by id) from app.products where practice_id = %s",
        (b.id,),
    )
    assert after_b == before_b
    assert one(dash, "select name from app.practices where id = %s", (b.id,)) == "Clinic B"
    assert one(dash, "select name from app.categories where id = %s", (trt_b,)) == "TRT"
    assert one(
        dash,
        "select count(*) from app.referral_sources where practice_id = %s and code = 'online'",
        (b.id,),
    )


def test_bad_input_gets_a_clear_message_and_changes_nothing(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    admin = visitors["admin_a"]
    base = f"/p/{a.id}"
    lab = product_id(dash, a.id, "Lab Panel")
    uncategorized = programme_id(dash, a.id, "Uncategorized")
    trt = programme_id(dash, a.id, "TRT")
    before = snapshot(dash)
    cases: list[tuple[str, dict[str, Any] | None, int, str]] = [
        (f"{base}/products/{lab}/move?to=peptides", None, 400, "choose a programme"),
        (f"{base}/products/{lab}/move", {"to": ""}, 400, "choose a programme"),
        (f"{base}/programmes", {"name": "   "}, 400, "a programme name is required"),
        (f"{base}/programmes", {"name": "x" * 101}, 400, "longer than 100"),
        (f"{base}/programmes", {"name": "weight loss"}, 422, "exists already"),
        (f"{base}/programmes/{trt}/rename", {"name": "ED"}, 422, "exists already"),
        (
            f"{base}/programmes/{uncategorized}/rename",
            {"name": "Misc"},
            422,
            "Uncategorized cannot be renamed",
        ),
        (f"{base}/rules", {"keyword": "  ", "category_id": ""}, 400, "a keyword is required"),
        (f"{base}/rules/delete", {"keyword": "no-such-rule"}, 404, "Not found"),
        (f"{base}/programmes/auto-apply", {"auto_apply": "maybe"}, 400, "on or off"),
        (
            f"{base}/settings",
            settings_form(dash, a.id, timezone="Mars/Olympus", name="Renamed"),
            422,
            "unknown time zone",
        ),
        (f"{base}/settings", settings_form(dash, a.id, lapse_days="0"), 422, "lapse period"),
        (
            f"{base}/settings",
            settings_form(dash, a.id, past_due_grace_days="seven"),
            422,
            "grace period must be a whole number",
        ),
        (f"{base}/settings", settings_form(dash, a.id, name=" "), 422, "the name is required"),
        (
            f"{base}/settings",
            settings_form(dash, a.id, default_billing_interval="hourly"),
            422,
            "default billing interval",
        ),
        (f"{base}/settings/referrals", {"label": "!!!"}, 400, "a letter or a digit"),
        (f"{base}/settings/referrals", {"label": "Online"}, 422, "exists already"),
        (f"{base}/settings/referrals/delete", {"code": "nope"}, 404, "Not found"),
    ]
    for path, form, status, reason in cases:
        response = admin.get(path) if form is None else admin.post(path, form)
        assert response.status_code == status, (path, form, response.status_code)
        assert reason in response.text, (path, reason, response.text[-1500:])
    assert snapshot(dash) == before
    # the refused settings page keeps what was typed
    typed = admin.post(f"{base}/settings", settings_form(dash, a.id, timezone="Mars/Olympus"))
    assert 'value="Mars/Olympus"' in typed.text
    # the programme page's refusals are swapped in by htmx (422), not a 500
    htmx = admin.post(f"{base}/programmes", {"name": "TRT"}, htmx=True)
    assert htmx.status_code == 422
    assert 'id="catalogue"' in htmx.text


def test_a_used_referral_source_cannot_be_removed(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute(
            "update app.memberships set referral_source = 'other' where id = %s",
            (a.memberships[0],),
        )
    response = visitors["owner_a"].post(f"/p/{a.id}/settings/referrals/delete", {"code": "other"})
    assert response.status_code == 422
    assert "used by memberships" in response.text
    assert one(
        dash,
        "select count(*) from app.referral_sources where practice_id = %s and code = 'other'",
        (a.id,),
    )


@pytest.mark.parametrize("role", ADMINS_A)
def test_owners_and_admins_reach_every_route(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    visitor = visitors[role]
    for method, path, form in routes(dash, role):
        response = call(visitor, method, path, form)
        assert response.status_code == 200, (role, method, path, response.text[-800:])
    page = visitor.get(f"/p/{dash.world.a.id}/memberships")
    assert 'data-testid="nav-programmes"' in page.text
    assert 'data-testid="nav-settings"' in page.text
    assert (
        one(
            dash,
            "select count(*) from app.categories where practice_id = %s and name = %s",
            (dash.world.a.id, f"Hair {role}"),
        )
        == 1
    )


def test_confirming_moving_and_managing(dash: Dash, visitors: dict[str, Visitor]) -> None:
    """What each action does, read back from the database (runs after the role tests)."""
    a = dash.world.a
    owner = visitors["owner_a"]
    base = f"/p/{a.id}"
    # a fresh unconfirmed product with a suggestion and a paying patient: a rule on "lab"
    # suggests Peptides for the Lab Panel (moved to Other above: move it back first)
    lab = product_id(dash, a.id, "Lab Panel")
    uncategorized = programme_id(dash, a.id, "Uncategorized")
    peptides = programme_id(dash, a.id, "Peptides")
    owner.post(f"{base}/products/confirm-suggested", {})  # whatever the role tests left
    owner.post(f"{base}/products/{lab}/move", {"to": uncategorized})
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute("update app.products set category_confirmed = false where id = %s", (lab,))
    assert (
        owner.post(f"{base}/rules", {"keyword": "LAB", "category_id": peptides}).status_code == 200
    )
    assert (
        one(dash, "select suggested_category_id::text from app.products where id = %s", (lab,))
        == peptides
    )

    page = owner.get(f"{base}/programmes")
    assert 'data-testid="queue"' in page.text
    assert "Confirm Peptides" in page.text
    preview = owner.get(f"{base}/products/{lab}/move?to={peptides}", htmx=True)
    assert preview.status_code == 200
    assert "<html" not in preview.text  # the fragment only
    rebuilt = re.search(r'data-testid="preview-rebuilt">(\d+)<', preview.text)
    assert rebuilt is not None
    patients = one(
        dash,
        "select count(distinct p.patient_id) from app.invoice_lines as l "
        "join app.payment_invoices as pi on pi.invoice_id = l.invoice_id "
        "join app.payments as p on p.id = pi.payment_id where l.product_id = %s",
        (lab,),
    )
    assert int(rebuilt.group(1)) >= patients > 0
    full = owner.get(f"{base}/products/{lab}/move?to={peptides}")
    assert "<html" in full.text  # without htmx, a page of its own
    assert 'data-testid="confirm-move"' in full.text

    confirmed = owner.post(f"{base}/products/confirm-suggested", {})  # the queue's only one
    assert confirmed.status_code == 200
    lines = one(dash, "select count(*) from app.invoice_lines where product_id = %s", (lab,))
    assert f"1 suggestion(s) confirmed: {lines} invoice line(s) moved" in confirmed.text
    assert f"{rebuilt.group(1)} membership(s) rebuilt" in confirmed.text
    assert 'data-testid="queue-empty"' in confirmed.text
    assert one(dash, "select category_id::text from app.products where id = %s", (lab,)) == peptides
    assert 'data-testid="changes"' in confirmed.text  # the recent moves show it
    assert one(
        dash,
        "select count(*) from app.memberships as m join app.invoice_lines as l "
        "on l.category_id = m.category_id where l.product_id = %s and m.practice_id = %s",
        (lab, a.id),
    )

    # rules: edit to suppress, delete
    assert owner.post(f"{base}/rules", {"keyword": "lab", "category_id": ""}).status_code == 200
    assert (
        one(
            dash,
            "select category_id from app.category_rules where practice_id = %s and keyword = 'lab'",
            (a.id,),
        )
        is None
    )
    assert owner.post(f"{base}/rules/delete", {"keyword": "lab"}).status_code == 200

    # programmes: add, rename
    assert owner.post(f"{base}/programmes", {"name": "Skin care"}).status_code == 200
    skin = programme_id(dash, a.id, "Skin care")
    renamed = owner.post(f"{base}/programmes/{skin}/rename", {"name": "Dermatology"})
    assert renamed.status_code == 200
    assert "Skin care renamed to Dermatology" in renamed.text

    # auto-apply off then on
    owner.post(f"{base}/programmes/auto-apply", {"auto_apply": "off"})
    assert (
        one(dash, "select auto_apply_suggestions from app.practices where id = %s", (a.id,))
        is False
    )
    owner.post(f"{base}/programmes/auto-apply", {"auto_apply": "on"})
    assert (
        one(dash, "select auto_apply_suggestions from app.practices where id = %s", (a.id,)) is True
    )


def test_settings_are_saved(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    admin = visitors["admin_a"]
    form = settings_form(
        dash,
        a.id,
        name="Clinic A",
        timezone="America/Denver",
        past_due_grace_days="3",
        lapse_days="60",
        default_billing_interval="quarterly",
        count_repeat_purchases="on",
    )
    form.pop("auto_apply_suggestions", None)  # unticked
    saved = admin.post(f"/p/{a.id}/settings", form)
    assert saved.status_code == 200, saved.text[-800:]
    assert "Settings saved." in saved.text
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select timezone, past_due_grace_days, lapse_days, auto_apply_suggestions, "
            "count_repeat_purchases, default_billing_interval from app.practices where id = %s",
            (a.id,),
        ).fetchone()
    assert row == ("America/Denver", 3, 60, False, True, "quarterly")
    page = admin.get(f"/p/{a.id}/settings")
    assert '<option value="America/Chicago">' in page.text  # the zones to choose from
    # the world as it was, for whatever runs after
    admin.post(
        f"/p/{a.id}/settings",
        settings_form(
            dash,
            a.id,
            timezone="America/Chicago",
            past_due_grace_days="7",
            lapse_days="30",
            default_billing_interval="monthly",
            auto_apply_suggestions="on",
        )
        | {"count_repeat_purchases": ""},
    )
    assert (
        one(dash, "select timezone from app.practices where id = %s", (a.id,)) == "America/Chicago"
    )

    added = admin.post(f"/p/{a.id}/settings/referrals", {"label": "Instagram ad"})
    assert added.status_code == 200
    assert 'data-code="instagram_ad"' in added.text
    removed = admin.post(f"/p/{a.id}/settings/referrals/delete", {"code": "instagram_ad"})
    assert removed.status_code == 200
    assert 'data-code="instagram_ad"' not in removed.text
