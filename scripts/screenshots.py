"""``make screenshots``: each dashboard page at desktop and phone width, into
docs/screenshots/ (shown in the README).

A database of its own (rebuilt each run) filled by the real pipeline (the MX stand-in's
sales through the webhook's procedure and the worker), the real dashboard on a loopback port,
and Debian's Chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import psycopg
from playwright.sync_api import Page, sync_playwright

from mxstandin.server import start_standin
from scripts import localdb
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from scripts.dev_pipeline import worker_settings
from scripts.dev_world import PASSWORD, add_user, build_world
from scripts.procs import free_port, start, stop, wait_http
from worker.commands.sync import sync_context
from worker.scheduler import Scheduler

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DB = os.environ.get("SCREENSHOTS_DB", "mx_dashboard_screenshots")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


def sign_in(page: Page, email: str) -> None:
    page.goto("/auth/sign-in")
    page.get_by_label("E-mail").first.fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


async def sync_once(owner_url: str, mx_base_url: str, practice_id: str, email: str) -> None:
    """A "sync now" of the practice, asked by its owner and carried out by the worker's
    scheduler, so the Events page shows a finished request and its run."""
    with psycopg.connect(owner_url) as conn, conn.transaction():
        user = conn.execute("select id from auth.users where email = %s", (email,)).fetchone()
        assert user is not None
        localdb.act_as_user(conn, user[0])
        conn.execute("select * from api.request_sync(%s)", (practice_id,))
    settings = worker_settings(owner_url, mx_base_url, scheduler_enabled=False)
    async with sync_context(settings) as ctx:  # the operator's pool and MX client
        await Scheduler(settings, ctx.pool, ctx.mx, asyncio.Event()).run_request()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    owner_url = localdb.fresh_database(DB)
    logins = localdb.create_service_logins(owner_url)
    standin = start_standin(seed=7)
    try:
        world = asyncio.run(build_world(owner_url, standin))
        add_user(owner_url, "new-hire@example.test", None)  # "no-practice": in none
        with psycopg.connect(owner_url, autocommit=True) as conn:
            # a practice the owner also belongs to, for the switcher
            conn.execute(
                "insert into app.practice_members (practice_id, user_id, role) "
                "select %s, id, 'admin' from auth.users where email = %s",
                (world.b.id, world.users["owner_a"]),
            )
            # issue 11's move preview: Lab Panel (Uncategorized) to Other
            row = conn.execute(
                "select p.id, c.id from app.products as p join app.categories as c "
                "on c.practice_id = p.practice_id and c.name = 'Other' "
                "where p.practice_id = %s and p.name = 'Lab Panel'",
                (world.a.id,),
            ).fetchone()
            assert row is not None, "the test world sells a Lab Panel"
            lab, other = row
            # the Team page: an invitation the worker has not sent yet
            conn.execute(
                "insert into app.member_invitations (practice_id, email, role) "
                "values (%s, 'new-nurse@example.test', 'staff')",
                (world.a.id,),
            )
        # the operator view: an operator of no practice
        operator = add_user(owner_url, "operator@example.test", None)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute("insert into app.operators (user_id) values (%s)", (operator,))
        asyncio.run(sync_once(owner_url, standin.base_url, world.a.id, world.users["owner_a"]))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_dir = ROOT / ".run"
        log_dir.mkdir(exist_ok=True)
        server = start(
            "screenshots-dashboard",
            ["-m", "dashboard"],
            {
                "DATABASE_URL": logins["dashboard"],
                "DASHBOARD_PORT": str(port),
                "DASHBOARD_JWT_SECRET": secrets.token_urlsafe(32),
                "DASHBOARD_COOKIE_SECURE": "false",  # plain http on loopback
                "LOG_LEVEL": "WARNING",
            },
            log_dir,
        )
    except BaseException:
        standin.stop()
        raise
    a = world.a
    with psycopg.connect(owner_url) as conn:
        row = conn.execute(
            "select max(id) from app.webhook_events where practice_id = %s", (a.id,)
        ).fetchone()
    event_id = row[0] if row else 0
    shots = {
        "sign-in": ("/auth/sign-in", None),
        "memberships": (f"/p/{a.id}/memberships", world.users["owner_a"]),
        "memberships-filtered": (
            f"/p/{a.id}/memberships?status=active&sort=last_paid_at.desc&q=a",
            world.users["owner_a"],
        ),
        "patient": (f"/p/{a.id}/patients/{a.patients[1]}", world.users["owner_a"]),
        "events": (f"/p/{a.id}/event-log", world.users["owner_a"]),
        "event": (f"/p/{a.id}/event-log/{event_id}", world.users["owner_a"]),
        "practices": ("/practices", world.users["owner_a"]),
        "no-practice": ("/", "new-hire@example.test"),
        "bad-filter": (f"/p/{a.id}/memberships?started_from=yesterday", world.users["owner_a"]),
        "not-found": (f"/p/{world.b.id}/memberships", world.users["staff_a"]),
        "team": (f"/p/{a.id}/team", world.users["owner_a"]),
        "memberships-viewer": (f"/p/{a.id}/memberships", world.users["viewer_a"]),
        "operator": ("/operator", "operator@example.test"),
        "payments": (f"/p/{a.id}/payments", world.users["owner_a"]),
        "payments-filtered": (
            f"/p/{a.id}/payments?view=recurring&kind=decline",
            world.users["owner_a"],
        ),
        "contracts": (f"/p/{a.id}/contracts", world.users["owner_a"]),
        "contract": (f"/p/{a.id}/contracts/{a.contracts['Adam Abbot']}", world.users["owner_a"]),
        "programmes": (f"/p/{a.id}/programmes", world.users["owner_a"]),
        "programmes-move": (f"/p/{a.id}/products/{lab}/move?to={other}", world.users["owner_a"]),
        "settings": (f"/p/{a.id}/settings", world.users["owner_a"]),
        "programmes-staff": (f"/p/{a.id}/programmes", world.users["staff_a"]),
        "metrics": (f"/p/{a.id}/metrics", world.users["owner_a"]),
        "revenue-outlook": (f"/p/{a.id}/revenue", world.users["owner_a"]),
        "metrics-staff": (f"/p/{a.id}/metrics", world.users["staff_a"]),
    }
    try:
        wait_http(f"{base_url}/readyz", log_dir)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for size, (width, height) in SIZES.items():
                sessions: dict[str | None, Page] = {}
                for name, (path, user) in shots.items():
                    if user not in sessions:
                        context = browser.new_context(
                            base_url=base_url, viewport={"width": width, "height": height}
                        )
                        sessions[user] = context.new_page()
                        if user:
                            sign_in(sessions[user], user)
                    page = sessions[user]
                    page.goto(path)
                    page.wait_for_load_state("networkidle")
                    target = OUT / f"{name}-{size}.png"
                    page.screenshot(path=str(target), full_page=size == "desktop")
                    print(f"screenshots: {target.relative_to(ROOT)}", flush=True)
            browser.close()
    finally:
        stop(server)
        standin.stop()
        localdb.drop_database(DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
