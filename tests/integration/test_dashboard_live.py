"""Live updates and outages: a change to a membership reaches the open pages of its practice
(and no other) as a server-sent event within 2 seconds; the listener reconnects after its
connection dies; a database outage shows a clear 503 and the dashboard recovers by itself."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg

from tests.support.dashboard import sign_in, start_dashboard
from tests.support.dashboard_fixtures import Dash
from tests.support.tcp_proxy import proxy_database


@contextmanager
def event_stream(client: httpx.Client, path: str) -> Iterator[queue.Queue[str]]:
    """The names of the events a page's stream receives, as they arrive."""
    events: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        try:
            with client.stream("GET", path, timeout=httpx.Timeout(5, read=60)) as response:
                events.put(f"status:{response.status_code}")
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        events.put(line.split(":", 1)[1].strip())
        except httpx.HTTPError as exc:
            events.put(f"error:{type(exc).__name__}")

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield events
    finally:
        stop.set()
        client.close()


def wait_for(events: queue.Queue[str], wanted: str, timeout: float) -> float:
    """Seconds until ``wanted`` arrived; AssertionError after ``timeout``."""
    started = time.monotonic()
    deadline = started + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(event)
        if event == wanted:
            return time.monotonic() - started
    raise AssertionError(f"{wanted} not received within {timeout}s; got {seen}")


def touch(owner_url: str, membership_id: str, note: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("update app.memberships set notes = %s where id = %s", (note, membership_id))


def test_a_change_reaches_its_practice_only_within_two_seconds(dash: Dash) -> None:
    a, b = dash.world.a, dash.world.b
    staff_a = sign_in(dash.base_url, dash.world.users["staff_a"])
    staff_b = sign_in(dash.base_url, dash.world.users["staff_b"])
    with (
        event_stream(staff_a, f"/p/{a.id}/events") as mine,
        event_stream(staff_b, f"/p/{b.id}/events") as theirs,
    ):
        assert mine.get(timeout=5) == "status:200"
        wait_for(mine, "ready", 5)
        assert theirs.get(timeout=5) == "status:200"
        wait_for(theirs, "ready", 5)
        membership = a.memberships[2]
        touch(dash.owner_url, membership, "live 1")
        assert wait_for(mine, f"m-{membership}", 2.0) < 2.0
        wait_for(mine, "changed", 1)
        time.sleep(0.5)
        leaked = []
        while not theirs.empty():
            leaked.append(theirs.get())
        assert not [e for e in leaked if e.startswith("m-")], leaked


def test_the_listener_reconnects_and_pages_reread(dash: Dash) -> None:
    a = dash.world.a
    client = sign_in(dash.base_url, dash.world.users["owner_a"])
    with event_stream(client, f"/p/{a.id}/events") as events:
        assert events.get(timeout=5) == "status:200"
        wait_for(events, "ready", 5)
        with psycopg.connect(dash.owner_url, autocommit=True) as conn:
            killed = conn.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where application_name = 'mx-dashboard-live' and datname = current_database()"
            ).fetchone()
        assert killed is not None
        assert killed[0] == 1
        wait_for(events, "reload", 10)  # reconnected: the page re-reads everything
        membership = a.memberships[3]
        touch(dash.owner_url, membership, "after the reconnect")
        wait_for(events, f"m-{membership}", 2.0)


def test_database_outage_gives_503_and_recovers_without_restart(dash: Dash) -> None:
    proxy, through_proxy = proxy_database(dash.dashboard_db_url)
    server = start_dashboard(through_proxy, db_connect_timeout_seconds=1)
    try:
        client = sign_in(server.base_url, dash.world.users["staff_a"])
        page = f"/p/{dash.world.a.id}/memberships"
        assert client.get(page).status_code == 200
        proxy.outage()
        down = client.get(page)
        assert down.status_code == 503
        assert "cannot reach its database" in down.text
        assert down.headers["retry-after"] == "5"
        assert client.get(page, headers={"HX-Request": "true"}).status_code == 503
        proxy.restore()
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            status = client.get(page).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
    finally:
        server.stop()
        proxy.close()
