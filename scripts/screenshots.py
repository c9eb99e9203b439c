"""``make screenshots``: each dashboard page at desktop and phone width, into
docs/screenshots/ (shown in the README).

A database of its own (rebuilt each run) filled by the real pipeline (the MX stand-in's
sales through the webhook's procedure and the worker), the real dashboard on a loopback port,
and Debian's Chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psycopg
from playwright.sync_api import Page, sync_playwright

from mxstandin.server import start_standin
from scripts import localdb
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.dashboard import PASSWORD, add_user, build_world, start_dashboard

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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    owner_url = localdb.fresh_database(DB)
    logins = localdb.create_service_logins(owner_url)
    standin = start_standin(seed=7)
    try:
        world = asyncio.run(build_world(owner_url, standin))
        nobody = add_user(owner_url, "new-hire@example.test", None)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            # a practice the owner also belongs to, for the switcher
            conn.execute(
                "insert into app.practice_members (practice_id, user_id, role) "
                "select %s, id, 'admin' from auth.users where email = %s",
                (world.b.id, world.users["owner_a"]),
            )
        server = start_dashboard(logins["dashboard"])
    finally:
        pass
    a = world.a
    shots = {
        "sign-in": ("/auth/sign-in", None),
        "memberships": (f"/p/{a.id}/memberships", world.users["owner_a"]),
        "memberships-filtered": (
            f"/p/{a.id}/memberships?status=active&sort=last_paid_at.desc&q=a",
            world.users["owner_a"],
        ),
        "patient": (f"/p/{a.id}/patients/{a.patients[1]}", world.users["owner_a"]),
        "practices": ("/practices", world.users["owner_a"]),
        "no-practice": ("/", "new-hire@example.test"),
        "bad-filter": (f"/p/{a.id}/memberships?started_from=yesterday", world.users["owner_a"]),
        "not-found": (f"/p/{world.b.id}/memberships", world.users["staff_a"]),
        "metrics": (f"/p/{a.id}/metrics", world.users["owner_a"]),
        "revenue-outlook": (f"/p/{a.id}/revenue", world.users["owner_a"]),
        "metrics-staff": (f"/p/{a.id}/metrics", world.users["staff_a"]),
    }
    del nobody
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for size, (width, height) in SIZES.items():
                sessions: dict[str | None, Page] = {}
                for name, (path, user) in shots.items():
                    if user not in sessions:
                        context = browser.new_context(
                            base_url=server.base_url, viewport={"width": width, "height": height}
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
        server.stop()
        standin.stop()
        localdb.drop_database(DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
