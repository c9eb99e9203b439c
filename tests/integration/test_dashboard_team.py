"""The Team page (owners) and the operator view, over real HTTP against the real app,
database and login role: every route as owner, admin, staff and viewer of practice A, staff
of practice B, a user of no practice, an operator and a signed-out visitor. The database
decides: admins, staff and viewers get 403 from the Team page, other practices and operators
404, and only operators see /operator."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.dashboard import add_user
from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import Visitor, signed_in_visitors
from worker.ops.invitations import process_pending

NOT_OWNERS_A = ("admin_a", "staff_a", "viewer_a")
OUTSIDERS = ("staff_b", "nobody", "operator")


@pytest.fixture(scope="module")
def operator_email(dash: Dash) -> str:
    email = f"operator-{uuid.uuid4().hex[:6]}@example.test"
    user_id = add_user(dash.owner_url, email, None)
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute("update auth.users set email_confirmed_at = now() where id = %s", (user_id,))
        conn.execute("select private.add_operator(%s)", (email,))
    return email


@pytest.fixture(scope="module")
def visitors(dash: Dash, operator_email: str) -> Iterator[dict[str, Visitor]]:
    """The world's users and an operator signed in, and ``anonymous``."""
    yield from signed_in_visitors(
        dash.base_url, dict(dash.world.users) | {"operator": operator_email}
    )


def member(dash: Dash, role: str) -> tuple[str, str]:
    """A fresh member of practice A (e-mail, user id), for changes the other tests must not see."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.test"
    return email, add_user(dash.owner_url, email, dash.world.a.id, role)


def roles_of(dash: Dash) -> dict[str, str]:
    with psycopg.connect(dash.owner_url) as conn:
        rows = conn.execute(
            "select u.email, m.role from app.practice_members as m "
            "join auth.users as u on u.id = m.user_id where m.practice_id = %s",
            (dash.world.a.id,),
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def invitations_of(dash: Dash) -> list[tuple[str, str, str]]:
    with psycopg.connect(dash.owner_url) as conn:
        rows = conn.execute(
            "select email, role, status from app.member_invitations where practice_id = %s "
            "order by id",
            (dash.world.a.id,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def team_actions(dash: Dash, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    base = f"/p/{dash.world.a.id}/team"
    return [
        (f"{base}/invite", {"email": f"x-{uuid.uuid4().hex[:6]}@example.test", "role": "staff"}),
        (f"{base}/{user_id}/role", {"role": "owner"}),
        (f"{base}/{user_id}/remove", {}),
        (f"{base}/invitations/1/cancel", {}),
    ]


def test_the_owner_sees_the_team(dash: Dash, visitors: dict[str, Visitor]) -> None:
    page = visitors["owner_a"].get(f"/p/{dash.world.a.id}/team")
    assert page.status_code == 200
    for name in ("owner_a", "admin_a", "staff_a", "viewer_a"):
        assert dash.world.users[name] in page.text
    assert dash.world.users["staff_b"] not in page.text
    assert 'data-testid="invite-form"' in page.text
    assert "Last sign-in" in page.text
    # the owner's nav has the Team link, nobody else's
    memberships = f"/p/{dash.world.a.id}/memberships"
    assert 'data-testid="nav-team"' in visitors["owner_a"].get(memberships).text
    for name in NOT_OWNERS_A:
        assert 'data-testid="nav-team"' not in visitors[name].get(memberships).text


@pytest.mark.parametrize("role", NOT_OWNERS_A)
def test_admins_staff_and_viewers_get_403_and_change_nothing(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    email, user_id = member(dash, "staff")
    before, invitations = roles_of(dash), invitations_of(dash)
    page = visitors[role].get(f"/p/{dash.world.a.id}/team")
    assert page.status_code == 403
    assert "only an owner of this practice may manage its team" in page.text
    assert email not in page.text
    for path, form in team_actions(dash, user_id):
        response = visitors[role].post(path, form)
        assert response.status_code == 403, (role, path, response.status_code)
        assert email not in response.text
    assert roles_of(dash) == before
    assert invitations_of(dash) == invitations


@pytest.mark.parametrize("role", OUTSIDERS)
def test_other_practices_and_operators_get_404(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    email, user_id = member(dash, "staff")
    before = roles_of(dash)
    response = visitors[role].get(f"/p/{dash.world.a.id}/team")
    assert response.status_code == 404
    assert dash.world.users["owner_a"] not in response.text
    for path, form in team_actions(dash, user_id):
        response = visitors[role].post(path, form)
        assert response.status_code == 404, (role, path, response.status_code)
        assert email not in response.text
    assert roles_of(dash) == before


def test_signed_out_visitors_are_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    anonymous = visitors["anonymous"]
    assert anonymous.get(f"/p/{dash.world.a.id}/team").status_code == 303
    assert anonymous.get("/operator").status_code == 303
    for path, form in team_actions(dash, dash.world.user_ids["staff_a"]):
        response = anonymous.post(path, form)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/auth/sign-in")


def test_team_forms_need_csrf(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    for path, form in team_actions(dash, dash.world.user_ids["staff_a"]):
        assert owner.client.post(path, data=form).status_code == 403, path


def test_invite_a_new_address_and_the_worker_sends_it(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    email = f"new-{uuid.uuid4().hex[:6]}@example.test"
    response = owner.post(f"{base}/invite", {"email": email.upper(), "role": "viewer"})
    assert response.status_code == 200
    assert "Invitation queued" in response.text
    assert "Invitation pending" in response.text
    assert (email, "viewer", "pending") in invitations_of(dash)
    # the worker: the same code as `member add` (locally: the invited auth.users row)
    done = process_pending(dash.logins["worker"])  # the worker's own login role
    assert [(d.email, d.outcome) for d in done] == [(email, "added")]
    assert roles_of(dash)[email] == "viewer"
    page = owner.get(base)
    row = re.search(rf'data-email="{re.escape(email)}".*?</tr>', page.text, re.S)
    assert row is not None
    assert "Invited" in row.group(0)


def test_invite_an_existing_account(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    email = f"confirmed-{uuid.uuid4().hex[:6]}@example.test"
    user_id = add_user(dash.owner_url, email, None)
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute("update auth.users set email_confirmed_at = now() where id = %s", (user_id,))
    response = owner.post(f"{base}/invite", {"email": email, "role": "admin"})
    assert response.status_code == 200
    assert "Added to the team" in response.text
    assert roles_of(dash)[email] == "admin"
    # an account nobody confirmed or invited gets no role (the existing rule)
    squatter = f"squatter-{uuid.uuid4().hex[:6]}@example.test"
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (email) values (%s)", (squatter,))
    refused = owner.post(f"{base}/invite", {"email": squatter, "role": "staff"})
    assert refused.status_code == 403
    assert "has not confirmed its e-mail address and was not invited" in refused.text
    assert squatter not in roles_of(dash)


def test_change_a_role_and_remove_someone(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    email, user_id = member(dash, "staff")
    response = owner.post(f"{base}/{user_id}/role", {"role": "viewer"})
    assert response.status_code == 200
    assert "Role changed" in response.text
    assert roles_of(dash)[email] == "viewer"
    same = owner.post(f"{base}/{user_id}/role", {"role": "viewer"})
    assert "already their role" in same.text
    removed = owner.post(f"{base}/{user_id}/remove")
    assert removed.status_code == 200
    assert "Removed from the team" in removed.text
    assert email not in roles_of(dash)
    again = owner.post(f"{base}/{user_id}/remove")
    assert again.status_code == 404
    assert "Not found" in again.text


def test_the_last_owner_stays(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    me = dash.world.user_ids["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    for path, form in ((f"{base}/{me}/role", {"role": "admin"}), (f"{base}/{me}/remove", {})):
        response = owner.post(path, form)
        assert response.status_code == 422, path
        assert "a practice needs an owner" in response.text
    assert roles_of(dash)[dash.world.users["owner_a"]] == "owner"


def test_bad_input_gets_a_clear_message_and_changes_nothing(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    before, invitations = roles_of(dash), invitations_of(dash)
    cases = [
        (f"{base}/invite", {"email": "", "role": "staff"}, 400, "e-mail is required"),
        (f"{base}/invite", {"email": "x@example.test", "role": "god"}, 400, "role must be one of"),
        (f"{base}/invite", {"email": "x" * 255, "role": "staff"}, 400, "longer than 254"),
        (
            f"{base}/invite",
            {"email": "not an address", "role": "staff"},
            422,
            "enter an e-mail address such as name@example.com",
        ),
        (f"{base}/{dash.world.user_ids['staff_a']}/role", {"role": ""}, 400, "role must be"),
        (f"{base}/{dash.world.user_ids['staff_b']}/role", {"role": "staff"}, 404, "Not found"),
        (f"{base}/{uuid.uuid4()}/remove", {}, 404, "Not found"),
        (f"{base}/invitations/999999/cancel", {}, 404, "Not found"),
    ]
    for path, form, status, text in cases:
        response = owner.post(path, form)
        assert response.status_code == status, (path, form, response.status_code)
        assert text in response.text, (path, response.text[-600:])
    assert owner.get(f"{base}/not-a-uuid/remove").status_code in (404, 405)
    assert roles_of(dash) == before
    assert invitations_of(dash) == invitations


def test_withdraw_an_invitation(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/team"
    email = f"later-{uuid.uuid4().hex[:6]}@example.test"
    owner.post(f"{base}/invite", {"email": email, "role": "staff"})
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select id from app.member_invitations where email = %s", (email,)
        ).fetchone()
    assert row is not None
    # another practice's people cannot withdraw it, even through their own practice's URL
    b_team = f"/p/{dash.world.b.id}/team"
    assert visitors["staff_b"].post(f"{b_team}/invitations/{row[0]}/cancel").status_code == 403
    assert visitors["owner_b"].post(f"{b_team}/invitations/{row[0]}/cancel").status_code == 404
    # nor touch practice A's people through practice B's Team page
    staff_a = dash.world.user_ids["staff_a"]
    before = roles_of(dash)
    owner_b = visitors["owner_b"]
    assert owner_b.post(f"{b_team}/{staff_a}/role", {"role": "owner"}).status_code == 404
    assert owner_b.post(f"{b_team}/{staff_a}/remove").status_code == 404
    assert roles_of(dash) == before
    response = owner.post(f"{base}/invitations/{row[0]}/cancel")
    assert response.status_code == 200
    assert "Invitation withdrawn" in response.text
    assert email not in response.text


def test_only_operators_see_the_operator_view(dash: Dash, visitors: dict[str, Visitor]) -> None:
    page = visitors["operator"].get("/operator")
    assert page.status_code == 200
    for practice in (dash.world.a, dash.world.b):
        assert f'data-merchant="{practice.mx_merchant_id}"' in page.text
    assert "Clinic A" in page.text
    assert "Clinic B" in page.text
    assert 'data-testid="ingest-depth"' in page.text
    # no practice's patients on it
    assert "Alice Archer" not in page.text
    for role in ("owner_a", "admin_a", "staff_a", "viewer_a", "staff_b", "nobody"):
        response = visitors[role].get("/operator")
        assert response.status_code == 404, role
        assert "Clinic B" not in response.text
    # an operator of no practice lands on it; the practice list links to it
    home = visitors["operator"].get("/")
    assert home.status_code == 303
    assert home.headers["location"] == "/operator"
    assert 'data-testid="operator-link"' in visitors["operator"].get("/practices").text
    assert 'data-testid="operator-link"' not in visitors["owner_a"].get("/practices").text
    # the operator has no practice data
    assert visitors["operator"].get(f"/p/{dash.world.a.id}/memberships").status_code == 404


def test_operator_view_shows_failing_credentials_and_dead_events(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    b = dash.world.b
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        conn.execute(
            "update app.merchant_accounts set credentials_failed_at = '2026-11-30 08:00+00', "
            "credentials_error = 'HTTP 401 from MX' where mx_merchant_id = %s",
            (b.mx_merchant_id,),
        )
    try:
        page = visitors["operator"].get("/operator")
        row = re.search(rf'data-merchant="{b.mx_merchant_id}".*?</tr>', page.text, re.S)
        assert row is not None
        assert "HTTP 401 from MX" in row.group(0)
        assert 'data-testid="credentials-failing"' in row.group(0)
        assert "Nov 30, 2026" in row.group(0)
    finally:
        with psycopg.connect(dash.owner_url, autocommit=True) as conn:
            conn.execute(
                "update app.merchant_accounts set credentials_failed_at = null, "
                "credentials_error = null where mx_merchant_id = %s",
                (b.mx_merchant_id,),
            )
