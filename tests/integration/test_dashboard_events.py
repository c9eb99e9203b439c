"""The Events page (webhook event explorer, replays, sync runs, "sync now") as owner, admin and
staff of practice A, staff of practice B, a user of no practice and a signed-out visitor, over
real HTTP against the real app and database. Owners and admins only: staff get 403, other
practices 404, and neither sees an event; another practice's ids are 404 and change nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import ADMINS_A, OUTSIDERS, Visitor, call, owner_rows
from tests.support.pipeline import worker_settings
from worker.consumer import make_pool
from worker.mx.client import MxClient
from worker.scheduler import Scheduler

ROW = re.compile(r'id="event-(\d+)"')


def event_ids(dash: Dash, practice_id: str, status: str = "processed") -> list[int]:
    return [
        r[0]
        for r in owner_rows(
            dash,
            "select id from app.webhook_events where practice_id = %s and status = %s order by id",
            (practice_id, status),
        )
    ]


def payment_ids(dash: Dash, practice_id: str) -> list[str]:
    rows = owner_rows(
        dash,
        "select payment_id from app.webhook_events where practice_id = %s "
        "and payment_id is not null",
        (practice_id,),
    )
    ids = [str(r[0]) for r in rows]
    assert ids, "the practice has no events with payments: checks on them would pass on nothing"
    return ids


def routes(dash: Dash) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, form) of every Events route of practice A."""
    a = dash.world.a
    base = f"/p/{a.id}"
    event = event_ids(dash, a.id)[0]
    return [
        ("GET", f"{base}/event-log", None),
        ("GET", f"{base}/event-log?status=processed&type=PaymentSuccess&limit=25", None),
        ("GET", f"{base}/event-log/{event}", None),
        ("POST", f"{base}/event-log/replay", {"event_id": str(event)}),
        ("GET", f"{base}/sync-requests", None),
        ("POST", f"{base}/sync-requests", {}),
    ]


@pytest.fixture(autouse=True)
def no_open_requests(dash: Dash) -> None:
    """Each test starts without sync requests (the worker does not run in these tests)."""
    owner_rows(dash, "delete from app.sync_requests")


@pytest.mark.parametrize("role", ADMINS_A)
def test_owner_and_admin_reach_every_events_route(
    dash: Dash, visitors: dict[str, Visitor], role: str
) -> None:
    for method, path, form in routes(dash):
        response = call(visitors[role], method, path, form)
        assert response.status_code == 200, (role, method, path, response.text[-500:])
    page = visitors[role].get(f"/p/{dash.world.a.id}/event-log?limit=100")
    assert "Sync now" in page.text
    shown = {int(i) for i in ROW.findall(page.text)}
    assert shown == {
        r[0]
        for r in owner_rows(
            dash, "select id from app.webhook_events where practice_id = %s", (dash.world.a.id,)
        )
    }
    # the nav leads there
    assert (
        f'href="/p/{dash.world.a.id}/event-log"'
        in visitors[role].get(f"/p/{dash.world.a.id}/memberships").text
    )


@pytest.mark.parametrize("role", ["staff_a", "viewer_a"])
def test_staff_get_403_and_no_event(dash: Dash, visitors: dict[str, Visitor], role: str) -> None:
    staff = visitors[role]
    payments = payment_ids(dash, dash.world.a.id)
    before = owner_rows(dash, "select count(*) from app.event_replays")
    for htmx in (False, True):
        for method, path, form in routes(dash):
            response = call(staff, method, path, form, htmx)
            assert response.status_code == 403, (method, path, response.status_code)
            assert not ROW.search(response.text)
            assert not any(p in response.text for p in payments), path
    assert owner_rows(dash, "select count(*) from app.sync_requests") == [(0,)]
    assert owner_rows(dash, "select count(*) from app.event_replays") == before
    # no link to the page for staff either (the refusal above is what enforces it)
    page = staff.get(f"/p/{dash.world.a.id}/memberships").text
    assert "/event-log" not in page


@pytest.mark.parametrize("role", OUTSIDERS)
@pytest.mark.parametrize("htmx", [False, True])
def test_outsiders_get_404_and_no_data(
    dash: Dash, visitors: dict[str, Visitor], role: str, htmx: bool
) -> None:
    payments = payment_ids(dash, dash.world.a.id)
    before = owner_rows(dash, "select count(*) from app.event_replays")
    for method, path, form in routes(dash):
        response = call(visitors[role], method, path, form, htmx)
        assert response.status_code == 404, (role, method, path, response.status_code)
        assert not any(p in response.text for p in payments), (role, path)
    assert owner_rows(dash, "select count(*) from app.sync_requests") == [(0,)]
    assert owner_rows(dash, "select count(*) from app.event_replays") == before


def test_signed_out_visitors_are_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    anonymous = visitors["anonymous"]
    for method, path, form in routes(dash):
        response = call(anonymous, method, path, form)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/auth/sign-in"), path
        htmx = call(anonymous, method, path, form, htmx=True)
        assert htmx.status_code == 401
    assert owner_rows(dash, "select count(*) from app.sync_requests") == [(0,)]


def test_csrf_is_required(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    for method, path, form in routes(dash):
        if method == "POST":
            assert owner.client.post(path, data=form).status_code == 403, path
    assert owner_rows(dash, "select count(*) from app.sync_requests") == [(0,)]


def test_other_practice_ids_get_404_and_change_nothing(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a, b = dash.world.a, dash.world.b
    owner = visitors["owner_a"]
    b_event = event_ids(dash, b.id)[0]
    b_payments = payment_ids(dash, b.id)
    attempts = [
        ("GET", f"/p/{a.id}/event-log/{b_event}", None),
        ("POST", f"/p/{a.id}/event-log/replay", {"event_id": str(b_event)}),
        ("GET", f"/p/{b.id}/event-log", None),
        ("GET", f"/p/{b.id}/event-log/{b_event}", None),
        ("POST", f"/p/{b.id}/event-log/replay", {"event_id": str(b_event)}),
        ("GET", f"/p/{b.id}/sync-requests", None),
        ("POST", f"/p/{b.id}/sync-requests", {}),
    ]
    for htmx in (False, True):
        for method, path, form in attempts:
            response = call(owner, method, path, form, htmx)
            assert response.status_code == 404, (method, path, response.status_code)
            assert not any(p in response.text for p in b_payments), path
    assert owner_rows(dash, "select status from app.webhook_events where id = %s", (b_event,)) == [
        ("processed",)
    ]
    assert owner_rows(dash, "select count(*) from app.sync_requests") == [(0,)]
    # A's page lists none of B's events, whatever the filter
    shown = ROW.findall(owner.get(f"/p/{a.id}/event-log?limit=100").text)
    assert shown  # A's own events are listed
    assert str(b_event) not in shown


def test_bad_input_gets_400_with_the_reason(dash: Dash, visitors: dict[str, Visitor]) -> None:
    owner = visitors["owner_a"]
    base = f"/p/{dash.world.a.id}/event-log"
    replays = owner_rows(dash, "select count(*) from app.event_replays")
    cases = {
        "status=bogus": "status must be one of",
        "type=Payment%20Success!": "type must be an MX event type",
        "from=yesterday": "from must be a date",
        "from=2026-02-01&to=2026-01-01": "from must not be after to",
        "before=abc": "before must be an event id",
        "limit=7": "limit must be one of",
    }
    for query, reason in cases.items():
        response = owner.get(f"{base}?{query}")
        assert response.status_code == 400, (query, response.status_code)
        assert reason in response.text, (query, response.text[-500:])
    for form, reason in (
        ({}, "choose at least one event"),
        ({"event_id": "abc"}, "event ids must be numbers"),
        ({"event_id": [str(n) for n in range(1, 102)]}, "at most 100 events"),
    ):
        response = owner.post(f"{base}/replay", form)
        assert response.status_code == 400, form
        assert reason in response.text
    assert owner_rows(dash, "select count(*) from app.event_replays") == replays


def test_date_range_is_in_the_practice_time_zone(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    event = event_ids(dash, a.id)[-1]
    # 03:00 UTC on the 15th is 21:00 on the 14th in Chicago (the practice's zone)
    owner_rows(
        dash,
        "update app.webhook_events set received_at = '2026-11-15 03:00+00' where id = %s",
        (event,),
    )
    owner = visitors["owner_a"]
    base = f"/p/{a.id}/event-log"

    def shown(query: str) -> set[int]:
        response = owner.get(f"{base}?{query}&limit=100")
        assert response.status_code == 200
        return {int(i) for i in ROW.findall(response.text)}

    assert shown("from=2026-11-14&to=2026-11-14") == {event}
    assert event not in shown("from=2026-11-15&to=2026-11-15")
    assert event not in shown("to=2026-11-13")
    assert event in shown("to=2026-11-14")
    page = owner.get(f"{base}/{event}").text
    assert "Nov 14, 2026, 9:00 PM CST" in page


def test_filters_and_paging(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    owner = visitors["owner_a"]
    base = f"/p/{a.id}/event-log"
    every = {
        r[0]
        for r in owner_rows(
            dash, "select id from app.webhook_events where practice_id = %s", (a.id,)
        )
    }
    assert len(every) > 25
    first = owner.get(f"{base}?limit=25")
    ids = [int(i) for i in ROW.findall(first.text)]
    assert len(ids) == 25
    found = re.search(r'href="([^"]+)"[^>]*data-testid="events-next"', first.text)
    assert found is not None
    second = owner.get(found.group(1).replace("&amp;", "&"))
    rest = [int(i) for i in ROW.findall(second.text)]
    assert not set(ids) & set(rest)
    assert set(ids) | set(rest) == every
    assert 'data-testid="events-next"' not in second.text
    # a filter: only PaymentFail events (the declined renewal)
    declined = {
        r[0]
        for r in owner_rows(
            dash,
            "select id from app.webhook_events where practice_id = %s "
            "and event_type = 'PaymentFail'",
            (a.id,),
        )
    }
    assert declined
    response = owner.get(f"{base}?type=PaymentFail&limit=100")
    assert {int(i) for i in ROW.findall(response.text)} == declined
    assert ROW.findall(owner.get(f"{base}?status=dead").text) == []
    # htmx filters get the list fragment only
    fragment = owner.get(f"{base}?type=PaymentFail", htmx=True)
    assert fragment.text.lstrip().startswith('<div id="event-list"')


def test_event_page_shows_the_masked_payload_and_error(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    event = event_ids(dash, a.id)[0]
    owner_rows(
        dash,
        "update app.webhook_events set last_error = 'MX: 500 boom', "
        'payload = payload || \'{"cardNumber": "4111 1111 1111 1111"}\' where id = %s',
        (event,),
    )
    page = visitors["admin_a"].get(f"/p/{a.id}/event-log/{event}")
    assert page.status_code == 200
    assert "MX: 500 boom" in page.text
    assert "cardNumber" in page.text
    assert "4111 1111 1111 1111" not in page.text  # the masked payload only
    assert "************1111" in page.text
    assert "Never replayed." in page.text


def test_replay_one_and_a_selection(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a, b = dash.world.a, dash.world.b
    owner = visitors["owner_a"]
    first, second = event_ids(dash, a.id)[:2]
    b_event = event_ids(dash, b.id)[0]
    response = owner.post(
        f"/p/{a.id}/event-log/replay",
        {"event_id": [str(first), str(second), str(b_event)]},
        htmx=True,
    )
    assert response.status_code == 200
    assert "2 of 3 events queued again" in response.text
    assert f"Event {b_event}: Not found" in response.text
    assert response.headers["HX-Trigger"] == "events-changed"
    rows = owner_rows(
        dash,
        "select e.id, e.status, r.replayed_by, r.actor_user_id::text, r.previous_status "
        "from app.webhook_events as e join app.event_replays as r on r.event_id = e.id "
        "where e.id = any(%s) order by e.id",
        ([first, second, b_event],),
    )
    owner_id = dash.world.user_ids["owner_a"]
    assert rows == [
        (first, "queued", "api", owner_id, "processed"),
        (second, "queued", "api", owner_id, "processed"),
    ]
    # a second replay of a queued event is refused with the reason; nothing changes
    again = owner.post(f"/p/{a.id}/event-log/replay", {"event_id": str(first)})
    assert again.status_code == 200
    assert "0 of 1 event queued again" in again.text
    assert "cannot be replayed" in again.text
    assert owner_rows(
        dash, "select count(*) from app.event_replays where event_id = %s", (first,)
    ) == [(1,)]
    # the event page shows the replay
    page = owner.get(f"/p/{a.id}/event-log/{first}").text
    assert "Never replayed." not in page
    assert ">you<" in page


async def test_sync_now_is_deduplicated_and_the_worker_finishes_it(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    owner, admin = visitors["owner_a"], visitors["admin_a"]
    asked = owner.post(f"/p/{a.id}/sync-requests", {}, htmx=True)
    assert asked.status_code == 200
    assert f"Sync requested for merchant {a.mx_merchant_id}." in asked.text
    assert 'hx-trigger="every 2s"' in asked.text  # the panel polls while it is open
    again = admin.post(f"/p/{a.id}/sync-requests", {}, htmx=True)
    assert again.status_code == 422
    assert "already pending: wait for it to finish" in again.text
    [(request_id, status, requested_by)] = owner_rows(
        dash, "select id, status, requested_by::text from app.sync_requests"
    )
    assert (status, requested_by) == ("pending", dash.world.user_ids["owner_a"])

    # a payment MX has that no webhook delivered; the worker's scheduler carries the request out
    dash.standin.state.create_sale(a.mx_merchant_id, lines=[{"product_name": "Lab", "price": "9"}])
    settings = worker_settings(dash.owner_url, dash.standin.base_url, scheduler_enabled=False)
    pool = make_pool(settings, application_name="test")
    await pool.open()
    try:
        async with MxClient(dash.standin.base_url) as mx:
            scheduler = Scheduler(settings, pool, mx, asyncio.Event())
            assert await scheduler.run_request() is True
    finally:
        await pool.close()

    panel = owner.get(f"/p/{a.id}/sync-requests", htmx=True)
    assert panel.status_code == 200
    assert 'hx-trigger="every 2s"' not in panel.text  # finished: polling stops
    assert 'data-testid="sync-request-status">done<' in panel.text
    [(run_status, run_by, found, queued)] = owner_rows(
        dash,
        "select r.status, r.run_by, r.found, r.queued from app.sync_requests as q "
        "join app.sync_runs as r on r.id = q.sync_run_id where q.id = %s",
        (request_id,),
    )
    assert (run_status, run_by) == ("succeeded", "request")
    assert found >= 1
    assert queued >= 1
    assert "<td>request</td>" in owner.get(f"/p/{a.id}/event-log").text
    # finished: the owner may ask again
    assert owner.post(f"/p/{a.id}/sync-requests", {}).status_code == 200
