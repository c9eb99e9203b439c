"""``make demo``: the whole system on this machine, with simulated clinics' traffic.

Database (found by scripts/localdb.py; rebuilt each run), migrations, seed practices,
login roles, the MX stand-in, the webhook, two workers, the dashboard (its URL and every
demo user's e-mail and password printed), simulated MX traffic for
``DEMO_SECONDS`` (default 30; 0 = until Ctrl-C), then a summary, and every process
stopped cleanly. Zero configuration; safe to run again.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

from mxstandin.traffic import SimMerchant, TrafficReport, provision_merchant, run_traffic
from scripts import localdb
from scripts.procs import free_port, port_is_free, start, start_standin, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
DEMO_DB = os.environ.get("DEMO_DB", "mx_memberships_demo")
RATE_PER_SECOND = float(os.environ.get("DEMO_RATE", "20"))
WORKERS = int(os.environ.get("DEMO_WORKERS", "2"))
DEMO_PASSWORD = "demo-password"  # every seeded user's, local demo only


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def build_database() -> tuple[str, dict[str, str]]:
    """Fresh demo database, seed, demo passwords, and the services' login roles; returns the
    owner URL and each service's URL."""
    url = localdb.fresh_database(DEMO_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((ROOT / "supabase" / "seed.sql").read_text())
        # the local platform layer plays Supabase Auth: bcrypt passwords in auth.users
        conn.execute("select auth.local_set_password(id, %s) from auth.users", (DEMO_PASSWORD,))
    return url, localdb.create_service_logins(url)


def demo_logins(owner_url: str) -> list[tuple[str, str, str]]:
    """(practice, role, e-mail) of every demo user."""
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute(
            "select p.name, m.role, u.email from app.practice_members as m "
            "join app.practices as p on p.id = m.practice_id "
            "join auth.users as u on u.id = m.user_id "
            "order by p.name, case m.role when 'owner' then 0 when 'admin' then 1 else 2 end"
        ).fetchall()
    return [(str(p), str(r), str(e)) for p, r, e in rows]


def dashboard_banner(url: str, owner_url: str) -> str:
    lines = ["", "=" * 78, f"Dashboard: {url}   (sign in with any of these)", "=" * 78]
    for practice, role, email in demo_logins(owner_url):
        lines.append(f"  {practice:<26} {role:<6} {email:<36} password: {DEMO_PASSWORD}")
    lines.append("=" * 78)
    return "\n".join(lines)


def operator(args: list[str], env: dict[str, str]) -> Any:
    """Run an operator command (``python -m worker ... --json``) and return its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "worker", *args, "--json"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"demo: `worker {' '.join(args)}` failed:\n{done.stderr}")
    return json.loads(done.stdout)


async def onboard(owner_url: str, standin: dict[str, Any], webhook_base: str) -> list[SimMerchant]:
    """One MX merchant per seeded practice, onboarded with the operator command line."""
    merchants = []
    with psycopg.connect(owner_url) as conn:
        practices = conn.execute("select slug, name from app.practices order by name").fetchall()
    for slug, name in practices:
        sim = await provision_merchant(standin["control_url"], name=name)
        account = operator(
            [
                "merchant",
                "add",
                "--practice",
                slug,
                "--mx-merchant-id",
                str(sim.merchant_id),
                "--environment",
                "production",
                "--name",
                name,
            ],
            {
                "DATABASE_URL": owner_url,
                "MX_CONSUMER_KEY": sim.consumer_key,
                "MX_CONSUMER_SECRET": sim.consumer_secret,
                "WEBHOOK_PUBLIC_URL": webhook_base,
            },
        )
        sim.webhook_url = account["callback_url"]
        merchants.append(sim)
    return merchants


async def play_traffic(
    standin: dict[str, Any], merchants: list[SimMerchant], seconds: float
) -> TrafficReport:
    if seconds > 0:
        say(f"simulated MX traffic for {seconds:g}s at ~{RATE_PER_SECOND:g} events/s")
        return await run_traffic(
            standin["control_url"], merchants, seconds, RATE_PER_SECOND, seed=42
        )
    say("simulated MX traffic until Ctrl-C")
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stopping.set)
    total = TrafficReport()
    round_no = 0
    while not stopping.is_set():
        part = await run_traffic(
            standin["control_url"], merchants, 5, RATE_PER_SECOND, seed=42 + round_no
        )
        round_no += 1
        total.posts += part.posts
        total.duplicates_sent += part.duplicates_sent
        total.reordered += part.reordered
        total.events.update(part.events)
        total.http_status.update(part.http_status)
        total.transport_errors += part.transport_errors
    return total


def wait_drained(owner_url: str, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(owner_url) as conn:
            row = conn.execute(
                "select count(*) from app.webhook_events where status in ('queued', 'retrying')"
            ).fetchone()
        if row and row[0] == 0:
            return True
        time.sleep(0.5)
    return False


def summary(owner_url: str, report: TrafficReport) -> str:
    lines = []
    with psycopg.connect(owner_url) as conn:
        members = conn.execute(
            """
            select p.name, c.name, m.status, count(*)
            from app.memberships as m
            join app.practices as p on p.id = m.practice_id
            join app.categories as c on c.id = m.category_id
            group by 1, 2, 3, c.sort_order order by 1, c.sort_order, 2, 3
            """
        ).fetchall()
        events = conn.execute(
            """
            select p.name,
                   count(*) filter (where e.status = 'processed'),
                   count(*) filter (where e.status in ('queued', 'retrying')),
                   count(*) filter (where e.status = 'dead'),
                   count(*) filter (where e.status = 'ignored'),
                   count(*) filter (where e.status = 'rejected'),
                   coalesce(sum(e.duplicate_count), 0),
                   (select count(*) from app.patients as pt where pt.practice_id = p.id),
                   (select count(*) from app.payments as pay where pay.practice_id = p.id),
            (select count(*) from app.products as pr
             where pr.practice_id = p.id and not pr.category_confirmed
                 and pr.suggested_category_id is not null
                 and pr.category_id is distinct from pr.suggested_category_id)
            from app.practices as p
            left join app.webhook_events as e on e.practice_id = p.id
            group by p.id, p.name order by p.name
            """
        ).fetchall()
    by_practice: dict[str, list[str]] = defaultdict(list)
    for practice, programme, status, count in members:
        by_practice[practice].append(f"{programme}: {count} {status}")
    lines.append("")
    lines.append("=" * 78)
    lines.append("Membership dashboard after the run")
    lines.append("=" * 78)
    for (
        practice,
        processed,
        pending,
        dead,
        ignored,
        rejected,
        dups,
        patients,
        payments,
        waiting,
    ) in events:
        lines.append(f"\n{practice}")
        lines.append(
            f"  patients {patients}, payments {payments}, "
            f"{waiting} new products with a suggested programme awaiting confirmation"
        )
        lines.append(
            f"  events: {processed} processed, {dups} duplicates dropped, "
            f"{ignored} non-payment stored, {dead} dead-lettered, {rejected} rejected, "
            f"{pending} still queued"
        )
        for entry in by_practice.get(practice, ["(no memberships yet)"]):
            lines.append(f"    {entry}")
    accepted = sum(count for status, count in report.http_status.items() if 200 <= status < 300)
    lines.append("")
    others = {s: c for s, c in report.http_status.items() if not 200 <= s < 300}
    lines.append(
        f"MX traffic: {report.posts} webhooks posted ({report.duplicates_sent} deliberate "
        f"duplicates, {report.reordered} held back and sent out of order), {accepted} answered "
        f"2xx, other answers {others}, connection errors {report.transport_errors}"
    )
    return "\n".join(lines)


def _sync_line(runs: list[dict[str, Any]]) -> str:
    statuses = sorted({str(r.get("status")) for r in runs})
    found = sum(int(r.get("found") or 0) for r in runs)
    queued = sum(int(r.get("queued") or 0) for r in runs)
    return f"{len(runs)} merchants, runs {'/'.join(statuses)}, {found} found, {queued} queued"


def dashboard_as_owner(owner_url: str) -> str:
    """What a practice owner sees through the Supabase API: the same role and JWT claims
    PostgREST sets, so row-level security decides what comes back."""
    lines = ["", "Dashboard of Northside TRT & Wellness, read as its owner through the api schema:"]
    owner = "00000000-0000-4000-8000-000000000001"
    with psycopg.connect(owner_url) as conn, conn.transaction():
        localdb.act_as_user(conn, owner)
        practice = conn.execute("select id, name from api.practices").fetchall()
        lines.append(f"  practices visible to this user: {[name for _, name in practice]}")
        practice_id = practice[0][0]
        tabs = conn.execute(
            "select * from api.membership_tab_counts(%s)", (practice_id,)
        ).fetchall()
        lines.append("  tabs: " + ", ".join(f"{row[2]} {row[-1]}" for row in tabs))
        rows = conn.execute(  # both dates in the practice's time zone, as the dashboard shows
            "select m.patient_name, m.category_name, m.status, m.started_on, "
            "(m.last_paid_at at time zone p.timezone)::date "
            "from api.list_memberships(%s, p_sort => 'last_paid_at.desc', p_limit => 8) as m "
            "cross join api.practices as p where p.id = %s order by m.last_paid_at desc nulls last",
            (practice_id, practice_id),
        ).fetchall()
        lines.append(f"  {'patient':<18} {'programme':<14} {'status':<9} {'started':<11} last paid")
        for name, programme, status, started, last_paid in rows:
            lines.append(f"  {name:<18} {programme:<14} {status:<9} {started!s:<11} {last_paid}")
    return "\n".join(lines)


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "30"))
    log_dir = ROOT / ".run" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"building database {DEMO_DB} (platform layer, migrations, seed, login roles)")
    owner_url, logins = build_database()
    webhook_db_url, worker_db_url = logins["webhook"], logins["worker"]

    procs: list[subprocess.Popen[bytes]] = []
    try:
        standin_proc, standin = start_standin(log_dir, seed=11)
        procs.append(standin_proc)
        say(f"MX stand-in at {standin['base_url']}")
        port = free_port()
        webhook_base = f"http://127.0.0.1:{port}"
        procs.append(
            start(
                "webhook",
                ["-m", "webhook"],
                {"DATABASE_URL": webhook_db_url, "WEBHOOK_PORT": str(port), "LOG_LEVEL": "WARNING"},
                log_dir,
            )
        )
        wait_http(f"{webhook_base}/readyz", log_dir)
        say(f"webhook at {webhook_base}")
        for n in range(WORKERS):
            procs.append(
                start(
                    f"worker-{n + 1}",
                    ["-m", "worker", "run"],
                    {
                        "DATABASE_URL": worker_db_url,
                        "MX_BASE_URL": standin["base_url"],
                        "LOG_LEVEL": "WARNING",
                        "WORKER_METRICS_PORT": "0",
                    },
                    log_dir,
                )
            )
        say(f"{WORKERS} workers consuming the queue (logs in {log_dir.relative_to(ROOT)})")
        dashboard_port = 8090 if port_is_free(8090) else free_port()
        dashboard_url = f"http://localhost:{dashboard_port}"
        procs.append(
            start(
                "dashboard",
                ["-m", "dashboard"],
                {
                    "DATABASE_URL": logins["dashboard"],
                    "DASHBOARD_PORT": str(dashboard_port),
                    "DASHBOARD_PUBLIC_URL": dashboard_url,
                    "DASHBOARD_JWT_SECRET": secrets.token_urlsafe(32),
                    "LOG_LEVEL": "WARNING",
                },
                log_dir,
            )
        )
        wait_http(f"http://127.0.0.1:{dashboard_port}/readyz", log_dir)
        print(dashboard_banner(dashboard_url, owner_url), flush=True)
        merchants = asyncio.run(onboard(owner_url, standin, webhook_base))
        say(f"onboarded {len(merchants)} practices as MX merchants")
        report = asyncio.run(play_traffic(standin, merchants, seconds))
        say("traffic done; waiting for the workers to finish the queue")
        drained = wait_drained(owner_url)
        sync_env = {"DATABASE_URL": owner_url, "MX_BASE_URL": standin["base_url"]}
        contracts = operator(["contracts", "--all"], sync_env)
        say(f"contract sync: {_sync_line(contracts)} (paused and canceled contracts now show)")
        reconcile = operator(["reconcile", "--all"], sync_env)
        say(f"reconcile: {_sync_line(reconcile)}")
        drained = wait_drained(owner_url) and drained
        print(summary(owner_url, report))
        print(dashboard_as_owner(owner_url))
        print(dashboard_banner(dashboard_url, owner_url))
        if not drained:
            say("the queue did not drain in time: see the logs")
            return 1
        return 0
    finally:
        stop(*reversed(procs))
        say("stopped every process")


if __name__ == "__main__":
    sys.exit(main())
