"""Dashboard benchmark (``make bench-dashboard``; ``make bench`` runs it after the others).

1. The memberships page of the largest practice, complete HTML over HTTP, beside exactly the
   ``api`` calls it makes (``dashboard.memberships_view.memberships_context``, as the same user
   in one transaction), alternating which goes first, ``--rounds`` times each; target: page p95 at
   most 2x the api p95.
2. The metrics page (``/p/{id}/metrics``: 12 months, every programme, four charts) and the
   revenue outlook (``/p/{id}/revenue``) of the same practice as its owner, complete HTML over
   HTTP, ``--metrics-rounds`` times each; target (issue 11): the metrics page p95 under 1 s.
3. Live: the time from a committed membership change (what the worker's procedures commit; the
   trigger's ``NOTIFY``) to the server-sent event on an open stream of that practice, while
   ingest runs at half its throughput through a real ``python -m webhook`` and a real
   ``python -m worker run``: the open-loop client of ``scripts/bench/load.py`` posts the
   notifications of sales the MX stand-in knows (another practice's), each once, and the worker
   fetches and applies them; other practices' memberships also change in the background
   (``--load`` updates a second); target: p95 under 2 s. Half of what: ``--ingest-rate``, else
   half the ingest throughput ``make bench`` just measured (``.run/bench/results.json``, if
   written in the last hour), else
   half of what a short closed-loop run against this webhook reaches here.

The dashboard, the webhook, the worker and the stand-in run as their own processes, as in
production: a server in a thread of the measuring process would
share its interpreter lock and add the lock's hand-overs to the page's times.

Data: the scale generator (``sql/bench/generate_scale_data.sql``) into a database of its own,
at the size given (``--practices/--payments/--memberships``), or ``--db NAME`` to reuse one
(for example ``mx_bench_scale`` from ``make bench``). Results: a table on stdout and
``.run/bench-dashboard.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import random
import secrets
import statistics
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import psycopg
import uvloop

from dashboard import query as q
from dashboard.auth import Identity
from dashboard.db import as_user, make_pool
from dashboard.memberships_view import memberships_context
from dashboard.settings import DashboardSettings
from scripts import localdb
from scripts.bench.harness import (
    CONCURRENCY,
    GENERATOR,
    ROOT,
    RUN_DIR,
    make_practice,
    mx_body,
    webhook_env,
)
from scripts.bench.load import closed_loop, open_loop, pct
from scripts.bench.worker import make_sales
from scripts.procs import free_port, start, start_standin, stop, wait_http

VARIANTS = {
    "by name, first page": "",
    "last paid, newest first": "sort=last_paid_at.desc",
    "active only, started between": "status=active&started_from=2024-01-01&started_to=2026-06-30",
}


def database(args: argparse.Namespace) -> str:
    if args.db:
        return localdb.database_url(args.db)
    url = localdb.fresh_database(args.new_db)
    print(
        f"bench-dashboard: generating {args.practices} practices, {args.memberships:,} "
        f"memberships, {args.payments:,} payments",
        flush=True,
    )
    started = time.monotonic()
    localdb.psql_file(
        url,
        GENERATOR,
        practices=args.practices,
        payments=args.payments,
        memberships=args.memberships,
    )
    print(f"bench-dashboard: generated in {time.monotonic() - started:.0f} s", flush=True)
    return url


def largest_practice(url: str) -> tuple[str, int, str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select m.practice_id, count(*) from app.memberships as m "
            "group by 1 order by 2 desc limit 1"
        ).fetchone()
        assert row is not None, "no memberships"
        owner = conn.execute(
            "select u.id, u.email from app.practice_members as pm join auth.users as u "
            "on u.id = pm.user_id where pm.practice_id = %s order by pm.role = 'owner' desc "
            "limit 1",
            (row[0],),
        ).fetchone()
    assert owner is not None, "the practice has no member"
    return str(row[0]), int(row[1]), str(owner[0]), str(owner[1] or "")


def token_for(secret: str, user_id: str, email: str) -> tuple[str, Identity]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "email": email,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, secret, "HS256"), Identity(user_id, email, now + 3600, claims)


async def api_calls(pool: Any, identity: Identity, practice: str, query: q.MembershipQuery) -> None:
    async with as_user(pool, identity, 5) as conn:
        await memberships_context(conn, practice, query)  # type: ignore[arg-type]


class PageClient:
    """A keep-alive HTTP/1.1 client whose own cost is small (``http.client``: the body in one
    read of its Content-Length): httpx parses responses in pure Python (h11) and added ~1 ms to
    each 128 KB page here, which is the measuring client's time, not the page's."""

    def __init__(self, base_url: str, token: str) -> None:
        url = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        self.headers = {"Cookie": f"mxd_access={token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


async def page_vs_api(
    base_url: str, token: str, pool: Any, identity: Identity, practice: str, rounds: int
) -> list[dict[str, Any]]:
    results = []
    # the dashboard is its own process and nothing else runs on this loop meanwhile: a blocking
    # request here times the page alone
    client = PageClient(base_url, token)
    try:
        for name, query_string in VARIANTS.items():
            path = f"/p/{practice}/memberships" + (f"?{query_string}" if query_string else "")
            query = q.parse_query(
                {k: [v] for k, v in (p.split("=") for p in query_string.split("&") if p)}
            )
            for _ in range(5):  # warm up both
                assert client.get(path)[0] == 200
                await api_calls(pool, identity, practice, query)
            page_ms: list[float] = []
            api_ms: list[float] = []
            for n in range(rounds):
                order = ("page", "api") if n % 2 == 0 else ("api", "page")
                for which in order:
                    started = time.perf_counter()
                    if which == "page":
                        status, body = client.get(path)
                        assert status == 200
                        page_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        await api_calls(pool, identity, practice, query)
                        api_ms.append((time.perf_counter() - started) * 1000)
            results.append(
                {
                    "variant": name,
                    "page_p50_ms": round(pct(page_ms, 50), 2),
                    "page_p95_ms": round(pct(page_ms, 95), 2),
                    "api_p50_ms": round(pct(api_ms, 50), 2),
                    "api_p95_ms": round(pct(api_ms, 95), 2),
                    "ratio_p95": round(pct(page_ms, 95) / pct(api_ms, 95), 2),
                    "bytes": len(body),
                }
            )
    finally:
        client.close()
    return results


METRIC_PAGES = {
    "metrics, last 12 months, all programmes": "metrics",
    "metrics, last 12 months, one programme": "metrics?programme={programme}",
    "revenue outlook, 6 months back, 6 ahead": "revenue",
    "revenue outlook, 12 months back, 12 ahead": "revenue?back=12&ahead=12",
}


def metrics_pages(
    base_url: str, token: str, practice: str, programme: str, rounds: int
) -> list[dict[str, Any]]:
    """The metrics and revenue pages, whole HTML over HTTP, as the practice's owner (timed with
    the same client as the memberships page)."""
    results = []
    client = PageClient(base_url, token)
    try:
        for name, tail in METRIC_PAGES.items():
            path = f"/p/{practice}/" + tail.format(programme=programme)
            for _ in range(2):  # warm up
                status, body = client.get(path)
                assert status == 200, (path, status)
            times: list[float] = []
            for _ in range(rounds):
                started = time.perf_counter()
                status, body = client.get(path)
                assert status == 200
                times.append((time.perf_counter() - started) * 1000)
            results.append(
                {
                    "page": name,
                    "p50_ms": round(pct(times, 50), 1),
                    "p95_ms": round(pct(times, 95), 1),
                    "max_ms": round(max(times), 1),
                    "bytes": len(body),
                }
            )
    finally:
        client.close()
    return results


def busiest_programme(url: str, practice: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select category_id from app.memberships where practice_id = %s "
            "group by 1 order by count(*) desc limit 1",
            (practice,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def live(
    owner_url: str, base_url: str, token: str, practice: str, samples: int, load: float
) -> dict[str, Any]:
    with psycopg.connect(owner_url) as conn:
        targets = [
            str(r[0])
            for r in conn.execute(
                "select id from app.memberships where practice_id = %s limit 50", (practice,)
            ).fetchall()
        ]
        others = [
            str(r[0])
            for r in conn.execute(
                "select id from app.memberships where practice_id <> %s limit 5000", (practice,)
            ).fetchall()
        ]
    received: dict[str, float] = {}
    ready = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        try:
            _listen()
        except httpx.HTTPError:
            if not stop.is_set():  # the server stopping at the end closes the stream
                raise

    def _listen() -> None:
        with (
            httpx.Client(
                base_url=base_url, cookies={"mxd_access": token}, timeout=httpx.Timeout(5, read=120)
            ) as client,
            client.stream("GET", f"/p/{practice}/events") as response,
        ):
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: ready"):
                    ready.set()
                elif line.startswith("event: m-"):
                    received.setdefault(line[len("event: m-") :].strip(), time.perf_counter())

    def background() -> None:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(
                    "update app.memberships set notes = %s where id = %s",
                    (f"bench {time.time()}", random.choice(others)),
                )
                time.sleep(1 / load)

    threading.Thread(target=listen, daemon=True).start()
    if not ready.wait(10):
        raise SystemExit("bench-dashboard: the event stream did not open")
    loader = threading.Thread(target=background, daemon=True)
    if others and load > 0:
        loader.start()
    latencies: list[float] = []
    missed = 0
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for n in range(samples):
            target = targets[n % len(targets)]
            received.pop(target, None)
            conn.execute(
                "update app.memberships set notes = %s where id = %s", (f"live {n}", target)
            )
            committed = time.perf_counter()
            deadline = committed + 5
            while target not in received and time.perf_counter() < deadline:
                time.sleep(0.002)
            if target in received:
                latencies.append((received[target] - committed) * 1000)
            else:
                missed += 1
            time.sleep(0.05)
    stop.set()
    return {
        "samples": samples,
        "missed": missed,
        "background_updates_per_s": load,
        "p50_ms": round(pct(latencies, 50), 1) if latencies else None,
        "p95_ms": round(pct(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
    }


class IngestLoad:
    """The ingest benchmark's half load in a thread: open-loop POSTs to the webhook at
    ``rate``, in 5 s windows until stopped, of MX notifications of sales the stand-in knows
    (each once), so the running worker fetches and applies every one of them."""

    WINDOW_SECONDS = 5.0

    def __init__(self, port: int, token: str, bodies: list[bytes], rate: float) -> None:
        self.port, self.path, self.bodies, self.rate = port, f"/webhooks/mx/{token}", bodies, rate
        self.windows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-load", daemon=True)

    def _run(self) -> None:
        sent = 0
        while not self._stop.is_set() and sent < len(self.bodies):

            def body_for(i: int, first: int = sent) -> bytes:
                return self.bodies[min(first + i, len(self.bodies) - 1)]

            seconds = min(self.WINDOW_SECONDS, (len(self.bodies) - sent) / self.rate)
            self.windows.append(
                uvloop.run(
                    open_loop(
                        "127.0.0.1",
                        self.port,
                        self.path,
                        body_for,
                        self.rate,
                        seconds,
                        connections=64,
                    )
                )
            )
            sent += self.windows[-1]["requests"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(self.WINDOW_SECONDS * 3)
        done = self.windows
        return {
            "rate": self.rate,
            "prepared_sales": len(self.bodies),
            "ran_out": sum(w["requests"] for w in done) >= len(self.bodies),
            "windows": len(done),
            "ok": sum(w["ok"] for w in done),
            "errors": sum(w["errors"] for w in done),
            "achieved_rate": round(statistics.mean(w["achieved_rate"] for w in done), 1)
            if done
            else None,
            "p99_ms_worst_window": round(max(w["p99_ms"] for w in done), 1) if done else None,
        }


def worker_progress(url: str, mx_merchant_id: int, since: dt.datetime) -> dict[str, int]:
    """What became of the ingest load's events (received since ``since``) by the end of the
    live run."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) filter (where status = 'processed'), "
            "count(*) filter (where status in ('queued', 'retrying')), "
            "count(*) filter (where status = 'dead') "
            "from app.webhook_events where mx_merchant_id = %s and received_at >= %s",
            (mx_merchant_id, since),
        ).fetchone()
    assert row is not None
    return {"processed": row[0], "unfinished": row[1], "dead": row[2]}


def half_ingest_rate(
    args: argparse.Namespace, port: int, token: str, merchant_id: int
) -> tuple[float, str]:
    """Half the ingest throughput: given, else the one ``make bench`` just measured, else a
    short closed-loop run against this webhook (Python, so below what wrk would reach)."""
    if args.ingest_rate:
        return args.ingest_rate, "--ingest-rate"
    results = RUN_DIR / "results.json"
    # only a figure measured just before (make bench runs the ingest benchmark first)
    if results.exists() and time.time() - results.stat().st_mtime < 3600:
        runs = json.loads(results.read_text()).get("details", {}).get("ingest_wrk") or []
        if runs:
            full = statistics.median(r["accepted_per_s"] for r in runs)
            return (
                round(full / 2),
                f"half of {full:.0f}/s, the ingest benchmark's wrk throughput "
                f"({results.relative_to(ROOT)})",
            )

    def body_for(i: int) -> bytes:
        return json.dumps(mx_body(merchant_id, 3_900_000_000_000 + i)).encode()

    measured = uvloop.run(
        closed_loop("127.0.0.1", port, f"/webhooks/mx/{token}", body_for, 5.0, CONCURRENCY)
    )
    full = measured["accepted_per_s"]
    return round(
        full / 2
    ), f"half of {full:.0f}/s, a 5 s closed-loop run (c={CONCURRENCY}) against this webhook"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="reuse this scale database (e.g. mx_bench_scale)")
    parser.add_argument(
        "--new-db", default="mx_bench_dashboard", help="the database generated (without --db)"
    )
    parser.add_argument("--practices", type=int, default=20)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--memberships", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--metrics-rounds", type=int, default=20)
    parser.add_argument("--live-samples", type=int, default=100)
    parser.add_argument(
        "--load",
        type=float,
        default=100.0,
        help="background membership updates per second during the live run",
    )
    parser.add_argument(
        "--ingest-rate",
        type=float,
        default=0.0,
        help="webhook requests per second during the live run (default: half the measured "
        "ingest throughput)",
    )
    args = parser.parse_args(argv)
    RUN_DIR.mkdir(parents=True, exist_ok=True)

    url = database(args)
    practice, size, user_id, email = largest_practice(url)
    print(f"bench-dashboard: largest practice {practice} with {size:,} memberships", flush=True)
    logins = localdb.create_service_logins(url)
    dashboard_port, webhook_port = free_port(), free_port()
    settings = DashboardSettings(
        database_url=logins["dashboard"],
        dashboard_port=dashboard_port,
        dashboard_jwt_secret=secrets.token_urlsafe(32),
        dashboard_cookie_secure=False,  # plain http on loopback
        db_pool_max_size=4,
        log_level="WARNING",
    )
    base_url = f"http://127.0.0.1:{dashboard_port}"
    token, identity = token_for(settings.dashboard_jwt_secret, user_id, email)
    # ids no earlier run on this database handed out (payments are never moved between
    # merchants: the same ids again would be refused)
    standin_proc, standin = start_standin(
        RUN_DIR, seed=11, id_offset=random.randrange(1, 1_000_000) * 1_000_000
    )
    procs = [
        standin_proc,
        start(
            "bench-dashboard",
            ["-m", "dashboard"],
            {
                "DATABASE_URL": settings.database_url,
                "DASHBOARD_PORT": str(dashboard_port),
                "DASHBOARD_JWT_SECRET": settings.dashboard_jwt_secret,
                "DASHBOARD_COOKIE_SECURE": "false",
                "DB_POOL_MAX_SIZE": str(settings.db_pool_max_size),
                "LOG_LEVEL": "WARNING",
            },
            RUN_DIR,
        ),
        start(
            "bench-webhook",
            ["-m", "webhook"],
            webhook_env(logins["webhook"], webhook_port),
            RUN_DIR,
        ),
    ]

    async def measure() -> list[dict[str, Any]]:
        pool = make_pool(settings)
        await pool.open()
        try:
            return await page_vs_api(base_url, token, pool, identity, practice, args.rounds)
        finally:
            await pool.close()

    try:
        wait_http(f"{base_url}/readyz", RUN_DIR)
        wait_http(f"http://127.0.0.1:{webhook_port}/readyz", RUN_DIR)
        pages = asyncio.run(measure())
        metrics = metrics_pages(
            base_url, token, practice, busiest_programme(url, practice), args.metrics_rounds
        )
        # the ingest load: a practice onboarded as a merchant the stand-in knows
        merchant = httpx.post(
            f"{standin['control_url']}/merchants", json={"name": "Bench Live Ingest"}, timeout=10
        ).json()
        with psycopg.connect(url, autocommit=True) as conn:
            merchant["token"] = make_practice(
                conn,
                f"Bench Live Ingest {merchant['merchant_id']}",
                int(merchant["merchant_id"]),
                merchant["consumer_key"],
                merchant["consumer_secret"],
            )
        rate, rate_source = half_ingest_rate(
            args, webhook_port, merchant["token"], int(merchant["merchant_id"])
        )
        # sales for the whole live run (its samples, the warm-up, a window to spare), each
        # posted once: the worker fetches and applies every one, as in production
        count = int(rate * (2 + args.live_samples * 0.1 + IngestLoad.WINDOW_SECONDS))
        print(
            f"bench-dashboard: live run with webhook ingest at {rate:.0f}/s ({rate_source}); "
            f"{count} stand-in sales for it, and a worker",
            flush=True,
        )
        sales = asyncio.run(make_sales(standin["control_url"], [merchant], count, seed=13))
        bodies = [json.dumps(sale["webhook"]).encode() for sale in sales]
        with psycopg.connect(url, autocommit=True) as conn:
            # queued before (the closed-loop run's made-up payments, an earlier run's): MX
            # knows none of them, so out before the worker starts
            conn.execute("delete from pgmq.q_mx_ingest")
            started_at = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        procs.append(
            start(
                "bench-worker",
                ["-m", "worker", "run"],
                {
                    "DATABASE_URL": logins["worker"],
                    "MX_BASE_URL": standin["base_url"],
                    "SCHEDULER_ENABLED": "false",
                    "WORKER_METRICS_PORT": "0",
                    "ALERT_CHECK_SECONDS": "0",
                    "LOG_LEVEL": "WARNING",
                },
                RUN_DIR,
            )
        )
        ingest = IngestLoad(webhook_port, merchant["token"], bodies, rate)
        ingest.start()
        time.sleep(1.5)  # its requests flowing before the first sample
        try:
            live_result = live(url, base_url, token, practice, args.live_samples, args.load)
        finally:
            ingest_result = ingest.stop()
            ingest_result["worker"] = worker_progress(url, int(merchant["merchant_id"]), started_at)
    finally:
        stop(*procs)
    ingest_result["rate_source"] = rate_source
    live_result["ingest"] = ingest_result
    with open("/proc/loadavg") as f:
        load_after = " ".join(f.read().split()[:3])
    report = {
        "practice_memberships": size,
        "pages": pages,
        "metrics_pages": metrics,
        "metrics_rounds": args.metrics_rounds,
        "live": live_result,
        "rounds": args.rounds,
        "load_average_after": load_after,
    }
    out = ROOT / ".run" / "bench-dashboard.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nDashboard, largest practice ({size:,} memberships), {args.rounds} rounds each:\n")
    print("| page | page p50 / p95 ms | api calls p50 / p95 ms | page / api p95 | target | met |")
    print("|---|---|---|---|---|---|")
    for row in pages:
        met = "yes" if row["ratio_p95"] <= 2.0 else "no"
        print(
            f"| {row['variant']} | {row['page_p50_ms']} / {row['page_p95_ms']} | "
            f"{row['api_p50_ms']} / {row['api_p95_ms']} | {row['ratio_p95']} | <= 2.0 | {met} |"
        )
    print(f"\nMetrics and revenue outlook pages, {args.metrics_rounds} rounds each:\n")
    print("| page | p50 / p95 / max ms | KB | target | met |")
    print("|---|---|---|---|---|")
    for row in metrics:
        is_metrics = row["page"].startswith("metrics")
        target = "p95 < 1000 ms" if is_metrics else "none"
        met = ("yes" if row["p95_ms"] < 1000 else "no") if is_metrics else "—"
        print(
            f"| {row['page']} | {row['p50_ms']} / {row['p95_ms']} / {row['max_ms']} | "
            f"{row['bytes'] // 1024} | {target} | {met} |"
        )
    live_met = (
        live_result["p95_ms"] is not None
        and live_result["p95_ms"] < 2000
        and not live_result["missed"]
    )
    print(
        f"\nLive: change -> event p50 {live_result['p50_ms']} ms, p95 {live_result['p95_ms']} ms, "
        f"max {live_result['max_ms']} ms, {live_result['missed']} missed of "
        f"{live_result['samples']}, with {args.load:g} background updates/s and webhook ingest "
        f"at {ingest_result['achieved_rate']}/s of {rate:.0f}/s asked ({rate_source}; "
        f"{ingest_result['ok']} accepted, {ingest_result['errors']} errors, worst window p99 "
        f"{ingest_result['p99_ms_worst_window']} ms; the worker meanwhile: "
        f"{ingest_result['worker']['processed']} processed, "
        f"{ingest_result['worker']['unfinished']} still queued, "
        f"{ingest_result['worker']['dead']} dead); target p95 < 2 s: "
        f"{'yes' if live_met else 'no'}"
    )
    print(f"Load average after the run: {load_after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
