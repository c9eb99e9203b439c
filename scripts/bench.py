"""``make bench``: each benchmark beside its ceiling, in one run, and the ratio between them.

    python -m scripts.bench [--only ingest|worker|dashboard]
                            [--practices N --payments N --memberships N] [--reuse-data]
                            [--iterations N] [--quick] [--no-doc]

* ingest: ``wrk`` against a running ``python -m webhook`` (max throughput, closed loop), an
  open-loop fixed-rate run at half that throughput for p99 (``scripts/bench_load.py``), and
  the ceiling: ``pgbench`` running the same ``private.ingest_webhook`` call with the same
  payload and concurrency on the same database.
* worker: events pre-queued through ingest, ``python -m worker run`` draining them with the
  MX stand-in at 0 ms and at 100 ms; ceiling: ``pgbench`` calling
  ``private.apply_payment_event`` with the canonical JSON the worker would build.
* dashboard: scale data (``sql/bench/generate_scale_data.sql``), then every ``api`` list,
  count and metrics query as a member of the largest practice exactly as PostgREST runs it
  (role and JWT claims set per transaction), beside the same query as the table owner
  (no RLS), and ``explain (analyze, buffers)`` of each.

Absolute times drift on a shared machine: every figure is printed beside its ceiling.
Results: the table on stdout, ``.run/bench/results.json`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvloop
from psycopg.types.json import Jsonb

from scripts import localdb
from scripts.bench_load import open_loop, pct
from scripts.procs import free_port, start, start_standin, stop, wait_http
from webhook.payload import EXAMPLE
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
GENERATOR = ROOT / "sql" / "bench" / "generate_scale_data.sql"
CONCURRENCY = 10  # wrk connections = pgbench clients = the webhook's database connections
WEBHOOK_PROCESSES = 2  # WEBHOOK_WORKERS: one per core


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# ------------------------------------------------------------------------------ results


@dataclass
class Row:
    benchmark: str
    subject: str
    ceiling: str
    ratio: float | None
    target: str
    met: bool | None

    @property
    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"{self.ratio:.2f}"

    def met_text(self, yes: str = "yes", no: str = "no") -> str:
        return "-" if self.met is None else (yes if self.met else no)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plans: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        mark = row.met_text("MET", "MISSED")
        say(f"{row.benchmark}: {row.subject} | ceiling {row.ceiling} | {row.ratio_text} | {mark}")


def table_markdown(rows: list[Row]) -> str:
    out = [
        "| benchmark | subject | ceiling | ratio | target | met |",
        "|---|---|---|---:|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.benchmark} | {r.subject} | {r.ceiling} | {r.ratio_text} | {r.target} "
            f"| {r.met_text(no='**no**')} |"
        )
    return "\n".join(out)


def table_text(rows: list[Row]) -> str:
    head = ("benchmark", "subject", "ceiling", "ratio", "target", "met")
    body = [
        (
            r.benchmark,
            r.subject,
            r.ceiling,
            r.ratio_text,
            r.target,
            r.met_text(no="NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    with psycopg.connect(localdb.server_url()) as conn:
        row = conn.execute("select version()").fetchone()
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "postgres": str(row[0]).split(" on ")[0] if row else "?",
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ------------------------------------------------------------------------------ helpers


def pgbench(
    url: str, script: Path, clients: int, extra: list[str], log_prefix: str
) -> dict[str, float]:
    """Run pgbench with per-transaction logs; tps and latency percentiles (ms)."""
    for old in RUN_DIR.glob(f"{log_prefix}*"):
        old.unlink()
    cmd = [
        "pgbench",
        "-n",
        "-M",
        "extended",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-f",
        str(script),
        "-l",
        f"--log-prefix={RUN_DIR / log_prefix}",
        *extra,
        url,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=RUN_DIR)
    text = out.stdout + out.stderr
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial", text).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", text)
    lat: list[float] = []
    for path in RUN_DIR.glob(f"{log_prefix}*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]) / 1000)
    return {
        "tps": tps,
        "transactions": len(lat),
        "failed": float(failed.group(1)) if failed else 0.0,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
    }


# ------------------------------------------------------------------------------ MX payloads


def mx_body(merchant_id: int, payment_id: int | str) -> dict[str, str]:
    """A full MX-shaped PaymentSuccess notification: the webhook's documented example
    (webhook/payload.py) with the rest of the keys MX sends. wrk, pgbench and the open-loop
    runs all send this body."""
    return {
        **EXAMPLE,
        "merchantId": str(merchant_id),
        "id": str(payment_id),
        "xmid": "5000012345",
        "dba": "Bench Practice",
        "referenceNumber": "522310012345",
        "authorizationCode": "A1B2C3",
        "replayId": "",
        "baseAmount": "181.12",
        "customerNumber": "C00042",
        "customFields": "",
        "fee": "0.00",
    }


def make_practice(
    conn: psycopg.Connection[Any],
    name: str,
    mx_merchant_id: int,
    key: str | None = None,
    secret: str | None = None,
) -> str:
    """A practice with one production merchant account; returns its webhook token."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    _, _, token = localdb.create_merchant(
        conn,
        name=name,
        slug=slug,
        mx_merchant_id=mx_merchant_id,
        environment="production",
        consumer_key=key,
        consumer_secret=secret,
    )
    return token


def run_wrk(target: str, seconds: int, body_template: str, nonce: int) -> dict[str, Any]:
    """wrk at full speed (closed loop) against the webhook, POSTing ``body_template`` with a new
    payment id in place of ``__ID__`` each time; its WRKJSON summary."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONCURRENCY}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "webhook.lua"),
            target,
            "--",
            body_template,
            str(nonce),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    wrk: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    wrk["accepted_per_s"] = (wrk["requests"] - wrk["non2xx"]) / (wrk["duration_us"] / 1e6)
    return wrk


def median(values: list[float]) -> float:
    return pct(values, 50)


def median_round(ratios: list[float]) -> int:
    """The round whose ratio is the median: its subject and ceiling are reported together."""
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    return order[round((len(order) - 1) / 2)]


def bench_ingest(results: Results, quick: bool) -> None:
    # Rounds alternate subject and ceiling, and the medians are reported: on a shared VM the
    # machine's speed drifts by tens of percent within minutes, and one long run of each, one
    # after the other, measured the drift as often as the webhook.
    seconds, rounds = (5, 1) if quick else (10, 3)
    say("ingest: fresh database, login roles, one merchant")
    url = localdb.fresh_database("mx_bench_ingest")
    webhook_url, _ = localdb.create_login_roles(url)
    merchant_id = 1000012345
    with psycopg.connect(url, autocommit=True) as conn:
        token = make_practice(conn, "Bench Ingest Practice", merchant_id)
    tmpl = json.dumps(mx_body(merchant_id, "__ID__"))
    port = free_port()
    env = {
        "DATABASE_URL": webhook_url,
        "WEBHOOK_PORT": str(port),
        # two server processes (one per core), each with half the connections: the webhook
        # holds as many database connections as pgbench has clients
        "WEBHOOK_WORKERS": str(WEBHOOK_PROCESSES),
        "DB_POOL_MIN_SIZE": str(CONCURRENCY // WEBHOOK_PROCESSES),
        "DB_POOL_MAX_SIZE": str(CONCURRENCY // WEBHOOK_PROCESSES),
        # one client address and one token: the per-address limit is off; the per-token limit
        # (in private.ingest_webhook, shared by every process) runs on every request with a
        # rate never reached, so its cost is measured (bench/ingest.pgbench passes the same)
        "WEBHOOK_RATE_PER_TOKEN": "1000000",
        "WEBHOOK_BURST_PER_TOKEN": "1000000",
        "WEBHOOK_RATE_PER_ADDRESS": "0",
    }

    def settle() -> None:
        # steady state, not the aftermath of the previous run: flush its dirty pages and
        # vacuum its rows, or the checkpoint and autovacuum they trigger land in the next one
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("checkpoint")
            conn.execute("vacuum (analyze) app.webhook_events, pgmq.q_mx_ingest")

    proc = start("webhook", ["-m", "webhook"], env, RUN_DIR)
    wrk_runs: list[dict[str, Any]] = []
    ceilings: list[dict[str, float]] = []
    fixed_runs: list[dict[str, Any]] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", RUN_DIR)
        target = f"http://127.0.0.1:{port}/webhooks/mx/{token}"
        warm_up = run_wrk(target, 3, tmpl, 1)  # pool, caches
        for r in range(rounds):
            settle()
            say(f"ingest round {r + 1}/{rounds}: wrk -t2 -c{CONCURRENCY} -d{seconds}s")
            wrk_runs.append(run_wrk(target, seconds, tmpl, 2 + r))
            settle()
            say(f"ingest round {r + 1}/{rounds}: pgbench ceiling, -c {CONCURRENCY}, {seconds}s")
            ceilings.append(
                pgbench(
                    webhook_url,
                    ROOT / "bench" / "ingest.pgbench",
                    CONCURRENCY,
                    ["-T", str(seconds), "-D", f"token={token}", "-D", f"tmpl={tmpl}"],
                    "ingest",
                )
            )
        wrk_rps = median([w["accepted_per_s"] for w in wrk_runs])
        rate = max(10.0, round(wrk_rps / 2))
        for r in range(rounds):
            settle()
            say(f"ingest round {r + 1}/{rounds}: open loop at {rate:.0f}/s for {2 * seconds}s")
            first_id = 3_000_000_000_000 + r * 100_000_000

            def body_for(i: int, first: int = first_id) -> bytes:
                return json.dumps(mx_body(merchant_id, first + i)).encode()

            fixed_runs.append(
                uvloop.run(  # the server's event loop too; lighter than asyncio's on 2 cores
                    open_loop(
                        "127.0.0.1",
                        port,
                        f"/webhooks/mx/{token}",
                        body_for,
                        rate,
                        2 * seconds,
                        connections=64,
                    )
                )
            )
    finally:
        stop(proc)
    results.details["ingest_wrk"] = wrk_runs
    results.details["ingest_pgbench"] = ceilings
    results.details["ingest_fixed_rate"] = fixed_runs
    # every 2xx must be a recorded event (the webhook answers 2xx only after the commit)
    answered_2xx = (
        sum(w["requests"] - w["non2xx"] for w in [warm_up, *wrk_runs])
        + sum(int(c["transactions"]) for c in ceilings)
        + sum(f["ok"] for f in fixed_runs)
    )
    failed = (
        sum(w["non2xx"] + w["socket_errors"] for w in [warm_up, *wrk_runs])
        + sum(f["errors"] for f in fixed_runs)
        + sum(int(c["failed"]) for c in ceilings)
    )
    with psycopg.connect(url) as conn:
        row = conn.execute("select count(*) from app.webhook_events").fetchone()
    recorded = row[0] if row else 0
    results.details["ingest_events"] = {
        "answered_2xx": answered_2xx,
        "recorded": recorded,
        "failed_requests": failed,
    }
    sound = failed == 0 and recorded >= answered_2xx
    if not sound:
        say(f"ingest: {failed} failed requests, {recorded} events recorded for {answered_2xx} 2xx")

    ratios = [w["accepted_per_s"] / c["tps"] for w, c in zip(wrk_runs, ceilings, strict=True)]
    mid = median_round(ratios)
    wrk, ceiling = wrk_runs[mid], ceilings[mid]
    results.add(
        Row(
            "webhook ingest: throughput",
            f"{wrk['accepted_per_s']:.0f} accepted/s (wrk, c={CONCURRENCY}, "
            f"p50 {wrk['p50_us'] / 1000:.1f} ms, p99 {wrk['p99_us'] / 1000:.1f} ms)",
            f"{ceiling['tps']:.0f} calls/s (pgbench, c={CONCURRENCY}, "
            f"p50 {ceiling['p50_ms']:.1f} ms, p99 {ceiling['p99_ms']:.1f} ms); "
            f"the median of {rounds} alternating rounds (ratios "
            f"{', '.join(f'{x:.2f}' for x in ratios)}); {failed} failed requests, "
            f"{recorded} events recorded for {answered_2xx} 2xx",
            ratios[mid],
            ">= 0.50; every 2xx recorded",
            sound and ratios[mid] >= 0.5,
        )
    )
    p99s = [f["p99_ms"] for f in fixed_runs]
    fixed = fixed_runs[median_round(p99s)]
    results.add(
        Row(
            "webhook ingest: p99 at half load",
            f"p50 {fixed['p50_ms']:.1f} ms, p99 {fixed['p99_ms']:.1f} ms "
            f"at {fixed['achieved_rate']:.0f}/s open loop, the median of {rounds} runs "
            f"(p99 {', '.join(f'{x:.1f}' for x in p99s)} ms; "
            f"{sum(f['ok'] for f in fixed_runs)} ok, "
            f"{sum(f['errors'] for f in fixed_runs)} errors)",
            "none: an absolute target",
            None,
            "p99 < 25 ms",
            fixed["p99_ms"] < 25 and sound,
        )
    )


# ------------------------------------------------------------------------------ (b) worker

APPLY_PLAN_SQL = """
create schema if not exists bench;
create table bench.apply_plan (
    k bigint primary key, msg_id bigint not null, event_id bigint not null,
    payment jsonb not null, invoices jsonb not null
);
create sequence bench.apply_seq;
"""


async def make_sales(
    control: str, merchants: list[dict[str, Any]], count: int, seed: int
) -> list[dict[str, Any]]:
    """``count`` sales through the stand-in's control API, spread over merchants and patients."""
    rng = random.Random(seed)
    products = [
        "Testosterone Cypionate 200mg/ml",
        "Enclomiphene 25mg",
        "Semaglutide 2.5mg",
        "Tirzepatide 10mg",
        "BPC-157 5mg",
        "Tadalafil 5mg",
        "Lab Panel",
    ]
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30) as http:
        for m in merchants:
            if "customers" not in m:
                m["customers"] = []
                for _ in range(40):
                    r = await http.post(
                        f"{control}/customers", json={"merchant_id": m["merchant_id"]}
                    )
                    r.raise_for_status()
                    m["customers"].append(r.json()["id"])

        async def one(i: int) -> dict[str, Any]:
            m = merchants[i % len(merchants)]
            body = {
                "merchant_id": m["merchant_id"],
                "customer_id": rng.choice(m["customers"]),
                "lines": [{"product_name": p} for p in rng.sample(products, rng.randint(1, 3))],
                "source": rng.choice(["QuickPay", "Recurring", "Invoice"]),
            }
            async with sem:
                r = await http.post(f"{control}/sales", json=body)
            r.raise_for_status()
            data: dict[str, Any] = r.json()
            data["_token"] = m["token"]
            return data

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def queue_sales(url: str, sales: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Record and queue each sale's webhook through private.ingest_webhook; (msg_id, event_id)."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for s in sales:
            ingested = conn.execute(
                "select outcome, event_id from private.ingest_webhook(%s, %s, null, null)",
                (s["_token"], Jsonb(s["webhook"])),
            ).fetchone()
            assert ingested is not None, s["webhook"]
            assert ingested[0] == "queued", ingested
            # a second statement: the ingest's own statement does not see the row it inserts
            row = conn.execute(
                "select msg_id, id from app.webhook_events where id = %s", (ingested[1],)
            ).fetchone()
            assert row is not None
            out.append((int(row[0]), int(row[1])))
    return out


def drain_rate(url: str, event_ids: list[int], timeout: float) -> dict[str, float]:
    """Wait until the events are finished; processed/s from their processed_at times."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select count(*) filter (where status in ('queued', 'retrying')), "
                "count(*) filter (where status = 'processed'), "
                "count(*) filter (where status = 'dead'), "
                "min(processed_at), max(processed_at) from app.webhook_events where id = any(%s)",
                (event_ids,),
            ).fetchone()
            assert row is not None
            if row[0] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    span = (row[4] - row[3]).total_seconds() if row[3] and row[4] else 0.0
    return {
        "unfinished": row[0],
        "processed": row[1],
        "dead": row[2],
        "seconds": span,
        "per_s": (row[1] - 1) / span if span > 0 else float("nan"),
    }


# the worker's default concurrency, set explicitly so the "allowed" rate below uses the same
WORKER_CONCURRENCY = WorkerSettings.model_fields["worker_concurrency"].default
STANDIN_LATENCY_MS = 100  # the slow MX stand-in


def run_worker(
    worker_url: str, standin_base: str, url: str, ids: list[int], name: str
) -> dict[str, float]:
    env = {
        "DATABASE_URL": worker_url,
        "WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "MX_BASE_URL": standin_base,
        "SCHEDULER_ENABLED": "false",
        "WORKER_METRICS_PORT": "0",
        "ALERT_CHECK_SECONDS": "0",
    }
    proc = start(name, ["-m", "worker", "run"], env, RUN_DIR)
    try:
        return drain_rate(url, ids, timeout=600)
    finally:
        stop(proc)


def bench_worker(results: Results, quick: bool) -> None:
    n_ceiling, n_fast, n_slow = (300, 300, 200) if quick else (3000, 3000, 1200)
    rounds = 1 if quick else 3
    say("worker: fresh database, login roles, MX stand-in, 4 merchants")
    url = localdb.fresh_database("mx_bench_worker")
    _, worker_url = localdb.create_login_roles(url)
    standin_proc, standin = start_standin(RUN_DIR, seed=7)
    try:
        control = standin["control_url"]
        merchants: list[dict[str, Any]] = []
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(4):
                m = httpx.post(
                    f"{control}/merchants", json={"name": f"Bench Worker {i}"}, timeout=10
                ).json()
                m["token"] = make_practice(
                    conn,
                    f"Bench Worker {i}",
                    int(m["merchant_id"]),
                    m["consumer_key"],
                    m["consumer_secret"],
                )
                merchants.append(m)
            conn.execute(APPLY_PLAN_SQL)

        say(f"worker: {n_ceiling + n_fast + n_slow} sales in the stand-in")
        sales = asyncio.run(make_sales(control, merchants, n_ceiling + n_fast + n_slow, seed=5))
        ceiling_sales, fast_sales = sales[:n_ceiling], sales[n_ceiling : n_ceiling + n_fast]
        slow_sales = sales[n_ceiling + n_fast :]

        # ceiling: the canonical JSON the worker builds (worker/mx/models.py), applied by pgbench
        from worker.mx.models import MxInvoice, MxPayment

        clients = WORKER_CONCURRENCY

        def run_ceiling(chunk: list[dict[str, Any]], first_k: int) -> dict[str, float]:
            queued = queue_sales(url, chunk)
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                cur.executemany(
                    "insert into bench.apply_plan values (%s, %s, %s, %s, %s)",
                    [
                        (
                            first_k + k,
                            msg,
                            ev,
                            Jsonb(MxPayment.model_validate(s["payment"]).canonical()),
                            Jsonb([MxInvoice.model_validate(s["invoice"]).canonical()]),
                        )
                        for k, ((msg, ev), s) in enumerate(zip(queued, chunk, strict=True))
                    ],
                )
            result = pgbench(
                url,
                ROOT / "bench" / "apply.pgbench",
                clients,
                ["-t", str(len(chunk) // clients)],
                "apply",
            )
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "select count(*) from app.webhook_events "
                    "where status = 'processed' and id = any(%s)",
                    ([ev for _, ev in queued],),
                ).fetchone()
            result["processed"] = row[0] if row else 0
            return result

        def run_fast(chunk: list[dict[str, Any]], name: str) -> dict[str, float]:
            ids = [ev for _, ev in queue_sales(url, chunk)]
            return run_worker(worker_url, standin["base_url"], url, ids, name)

        # Rounds alternate the ceiling and the subject (and which goes first), medians
        # reported: the machine's speed drifts by tens of percent between minutes.
        httpx.post(f"{control}/config", json={"latency_ms": 0}, timeout=10)
        httpx.get(f"{control}/counters", params={"reset": 1}, timeout=10)
        ceilings: list[dict[str, float]] = []
        fasts: list[dict[str, float]] = []
        per_round = n_ceiling // rounds
        for r in range(rounds):
            c_chunk = ceiling_sales[r * per_round : (r + 1) * per_round]
            f_chunk = fast_sales[r * per_round : (r + 1) * per_round]
            say(
                f"worker round {r + 1}/{rounds}: pgbench apply procedure (-c {clients}) and "
                f"python -m worker run (stand-in at 0 ms), {per_round} events each"
            )
            if r % 2 == 0:
                ceilings.append(run_ceiling(c_chunk, r * per_round + 1))
                fasts.append(run_fast(f_chunk, f"worker-0ms-{r + 1}"))
            else:
                fasts.append(run_fast(f_chunk, f"worker-0ms-{r + 1}"))
                ceilings.append(run_ceiling(c_chunk, r * per_round + 1))
        counters = httpx.get(f"{control}/counters", params={"reset": 1}, timeout=10).json()
        results.details["worker_pgbench_apply"] = ceilings
        results.details["worker_0ms"] = fasts
        results.details["standin_counters_0ms"] = counters

        say(f"worker: python -m worker run, stand-in at {STANDIN_LATENCY_MS} ms, {n_slow} events")
        httpx.post(f"{control}/config", json={"latency_ms": STANDIN_LATENCY_MS}, timeout=10)
        slow_ids = [ev for _, ev in queue_sales(url, slow_sales)]
        slow = run_worker(worker_url, standin["base_url"], url, slow_ids, "worker-100ms")
        slow_counters = httpx.get(f"{control}/counters", timeout=10).json()
        results.details["worker_100ms"] = slow
        results.details["standin_counters_100ms"] = slow_counters
    finally:
        stop(standin_proc)

    # every event of every run done (a timeout leaves some unfinished), every planned apply run
    complete = all(f["unfinished"] == 0 for f in [*fasts, slow]) and all(
        c["processed"] == c["transactions"] for c in ceilings
    )
    ratios = [f["per_s"] / c["tps"] for f, c in zip(fasts, ceilings, strict=True)]
    mid = median_round(ratios)
    fast, ceiling = fasts[mid], ceilings[mid]
    processed = sum(int(f["processed"]) for f in fasts)
    dead = sum(int(f["dead"]) for f in fasts)
    results.add(
        Row(
            "worker: stand-in 0 ms",
            f"{fast['per_s']:.0f} payments/s ({processed} processed, {dead} dead in all rounds)",
            f"{ceiling['tps']:.0f} applies/s (pgbench apply_payment_event, c={clients}); "
            f"the median of {rounds} alternating rounds (ratios "
            f"{', '.join(f'{x:.2f}' for x in ratios)})",
            ratios[mid],
            ">= 0.30; every event done",
            complete and ratios[mid] >= 0.3,
        )
    )
    # What the configured concurrency allows: events in flight / (MX round trips in sequence
    # per payment x latency). The round trips are read from the stand-in's counters: GET
    # /payment/{id}, then the payment's invoices in parallel. The per-merchant cap
    # (MX_PER_MERCHANT_CONCURRENCY 4 x 4 merchants = 16 calls) does not bind.
    routes = slow_counters["by_route"]
    round_trips = sum(1 for r in ("GET /payment/{id}", "GET /invoice/{id}") if r in routes)
    latency = STANDIN_LATENCY_MS / 1000
    allowed = WORKER_CONCURRENCY / (round_trips * latency)
    ratio100 = slow["per_s"] / allowed
    results.details["worker_100ms_allowed"] = {
        "in_flight": WORKER_CONCURRENCY,
        "round_trips": round_trips,
        "calls_per_payment": slow_counters["total"] / max(1, slow["processed"]),
        "latency_s": latency,
        "per_s": allowed,
    }
    results.add(
        Row(
            f"worker: stand-in {STANDIN_LATENCY_MS} ms",
            f"{slow['per_s']:.1f} payments/s ({slow['processed']} processed)",
            f"{allowed:.0f}/s allowed = {WORKER_CONCURRENCY} in flight / "
            f"({round_trips} round-trips x {STANDIN_LATENCY_MS} ms)",
            ratio100,
            ">= 0.80; every event done",
            complete and ratio100 >= 0.8,
        )
    )


# ------------------------------------------------------------------------------ (c) dashboard


def generate(url: str, practices: int, payments: int, memberships: int) -> dict[str, Any]:
    say(
        f"dashboard: generating {practices} practices, {payments} payments, "
        f"{memberships} memberships"
    )
    started = time.monotonic()
    steps = localdb.psql_file(
        url, GENERATOR, practices=practices, payments=payments, memberships=memberships
    )
    elapsed = time.monotonic() - started
    print(steps, flush=True)
    check = localdb.psql_file(
        url, ROOT / "sql" / "bench" / "check_scale_data.sql", sample=1000, tuples_only=True
    )
    last = [x for x in check.splitlines() if x.count("|") == 2][-1].split("|")
    with psycopg.connect(url) as conn:
        counts = {
            t: conn.execute(f"select count(*) from app.{t}").fetchone()[0]  # type: ignore[index]
            for t in (
                "practices",
                "patients",
                "memberships",
                "payments",
                "invoices",
                "invoice_lines",
                "membership_events",
                "contracts",
            )
        }
        size = conn.execute(
            "select pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    return {
        "seconds": round(elapsed, 1),
        "steps": steps,
        "counts": counts,
        "size": size[0] if size else "?",
        "check": {
            "checked": int(last[0]),
            "differing": int(last[1]),
            "with_new_events": int(last[2]),
        },
    }


def dashboard_queries(
    conn: psycopg.Connection[Any],
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]:
    """The member of the largest practice, the parameters, and the queries PostgREST would run
    for it (kind, name, SQL)."""
    row = conn.execute(
        """
        select p.id, m.user_id, (select count(*) from app.memberships x where x.practice_id = p.id)
        from app.practices as p
        join app.practice_members as m on m.practice_id = p.id and m.role = 'owner'
        order by 3 desc limit 1
        """
    ).fetchone()
    assert row is not None
    practice_id, user_id, n = row
    cat = conn.execute(
        "select id from app.categories where practice_id = %s and name = 'TRT'", (practice_id,)
    ).fetchone()
    patient = conn.execute(
        "select patient_id from app.payments where practice_id = %s "
        "group by 1 order by count(*) desc limit 1",
        (practice_id,),
    ).fetchone()
    page1 = conn.execute(
        "select cursor from api.list_memberships(%s) offset 49 limit 1", (practice_id,)
    ).fetchone()
    if cat is None or patient is None or page1 is None:
        # a missing parameter would be null and time another query than the one named
        raise SystemExit("bench: the largest practice lacks a TRT programme, payments or a page 2")
    today = dt.date.today()
    p = {
        "practice": practice_id,
        "cat": str(cat[0]),
        "patient": patient[0],
        "after": Jsonb(page1[0]),
        "month_from": today.replace(day=1),
        "year_from": today - dt.timedelta(days=365),
        "today": today,
    }
    info = {"practice_id": str(practice_id), "user_id": str(user_id), "memberships": n}
    L, C, M, R = "list", "count", "metrics", "reference"
    queries = [
        (
            L,
            "list_memberships: all, by name",
            "select * from api.list_memberships(%(practice)s)",
        ),
        (
            L,
            "list_memberships: page 2 (cursor)",
            "select * from api.list_memberships(%(practice)s, p_after => %(after)s)",
        ),
        (
            L,
            "list_memberships: programme tab",
            "select * from api.list_memberships(%(practice)s, p_tab => %(cat)s)",
        ),
        (
            L,
            "list_memberships: cancellations tab",
            "select * from api.list_memberships(%(practice)s, p_tab => 'cancellations')",
        ),
        (
            L,
            "list_memberships: status past_due",
            "select * from api.list_memberships(%(practice)s, p_status => '{past_due}')",
        ),
        (
            L,
            "list_memberships: search 'smi'",
            "select * from api.list_memberships(%(practice)s, p_search => 'smi')",
        ),
        (
            L,
            "list_memberships: last paid desc",
            "select * from api.list_memberships(%(practice)s, p_sort => 'last_paid_at.desc')",
        ),
        (
            L,
            "list_memberships: started from/to",
            "select * from api.list_memberships(%(practice)s, p_started_from => %(year_from)s, "
            "p_started_to => %(today)s, p_sort => 'started_on.desc')",
        ),
        (
            L,
            "GET api.payments (newest 50)",
            "select * from api.payments where practice_id = %(practice)s "
            "order by mx_created_at desc, id desc limit 50",
        ),
        (
            L,
            "GET api.invoices (newest 50)",
            "select * from api.invoices where practice_id = %(practice)s "
            "order by invoice_date desc, id desc limit 50",
        ),
        (
            L,
            "GET api.membership_events (newest 50)",
            "select * from api.membership_events where practice_id = %(practice)s "
            "order by evidence_at desc limit 50",
        ),
        (L, "GET api.products", "select * from api.products where practice_id = %(practice)s"),
        (L, "patient_detail", "select api.patient_detail(%(patient)s)"),
        (C, "membership_tab_counts", "select * from api.membership_tab_counts(%(practice)s)"),
        # what PostgREST runs for `Prefer: count=planned`: the request's plan, its row estimate
        (
            C,
            "count=planned api.memberships",
            "explain (format json) select * from api.memberships where practice_id = %(practice)s",
        ),
        (
            C,
            "count=planned api.payments",
            "explain (format json) select * from api.payments where practice_id = %(practice)s",
        ),
        # `Prefer: count=exact` counts every row of the practice (52k memberships, 520k
        # payments at the default scale): measured for reference, not a dashboard query
        (
            R,
            "count=exact api.memberships",
            "select count(*) from api.memberships where practice_id = %(practice)s",
        ),
        (
            R,
            "count=exact api.payments",
            "select count(*) from api.payments where practice_id = %(practice)s",
        ),
        (
            M,
            "practice_metrics: this month",
            "select * from api.practice_metrics(%(practice)s, %(month_from)s, %(today)s)",
        ),
        (
            M,
            "practice_metrics: last 12 months",
            "select * from api.practice_metrics(%(practice)s, %(year_from)s, %(today)s)",
        ),
    ]
    return info, p, queries


def time_query(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], user_id: str | None
) -> float:
    """One PostgREST-style transaction (as ``user_id``, or as the owner when None); the
    query's own time in ms (role and claims are set before the clock starts)."""
    with conn.transaction():
        if user_id is not None:
            localdb.act_as_user(conn, user_id)
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
        return (time.perf_counter() - started) * 1000


def explain(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], user_id: str) -> str:
    """explain (analyze, buffers) as the member; nested statements of functions via auto_explain."""
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(on_notice)
    try:
        with conn.transaction():
            localdb.act_as_user(conn, user_id)
            rows = conn.execute("explain (analyze, buffers) " + sql, params).fetchall()  # type: ignore[operator]
    finally:
        conn.remove_notice_handler(on_notice)
    text = "\n".join(r[0] for r in rows)
    nested = [n for n in notices if n.startswith("duration:")]
    if nested:
        text += "\n\n-- nested statements (auto_explain):\n" + "\n\n".join(nested)
    return text


SCALE_DB = "mx_bench_scale"


def generation_key(practices: int, payments: int, memberships: int) -> str:
    """What a scale database was generated from: the parameters and the generator itself."""
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]
    return f"{practices}/{payments}/{memberships}/{digest}"


def reusable_scale_data(practices: int, payments: int, memberships: int) -> str | None:
    """The scale database of an earlier run with the same parameters and generator, migrated
    to now."""
    url = localdb.database_url(SCALE_DB)
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("select key from bench.generation").fetchone()
    except psycopg.Error:
        return None
    if row is None or row[0] != generation_key(practices, payments, memberships):
        return None
    localdb.apply_migrations(url)  # the migrations added since it was generated
    return url


def bench_dashboard(
    results: Results,
    practices: int,
    payments: int,
    memberships: int,
    iterations: int,
    reuse_data: bool,
) -> None:
    url = reusable_scale_data(practices, payments, memberships) if reuse_data else None
    if url is not None:
        say(f"dashboard: reusing {SCALE_DB} (same parameters and generator), migrated to now")
        results.details["generation"] = {"reused": SCALE_DB}
    else:
        url = localdb.fresh_database(SCALE_DB)
        gen = generate(url, practices, payments, memberships)
        with psycopg.connect(url) as conn:
            conn.execute(
                "create table bench.generation as select %s as key, now() as generated_at",
                (generation_key(practices, payments, memberships),),
            )
        results.details["generation"] = gen
        say(f"dashboard: generated in {gen['seconds']} s ({gen['size']}); check {gen['check']}")
        results.add(
            Row(
                "scale data generation",
                f"{gen['seconds']:.0f} s for {gen['counts']['payments']:,} payments, "
                f"{gen['counts']['memberships']:,} memberships ({gen['size']})",
                f"consistency: {gen['check']['differing']} of {gen['check']['checked']} "
                "sampled memberships "
                "differ from private.refresh_membership_from_payments",
                None,
                "minutes; 0 differing",
                gen["check"]["differing"] == 0 and gen["check"]["with_new_events"] == 0,
            )
        )

    with psycopg.connect(url, autocommit=True) as conn:
        info, params, queries = dashboard_queries(conn)
    results.details["dashboard_member"] = info
    member_id = info["user_id"]
    say(f"dashboard: member of the largest practice ({info['memberships']:,} memberships)")
    measured = []
    with psycopg.connect(url) as member, psycopg.connect(url) as owner:
        for kind, name, sql in queries:
            for _ in range(3):  # warm-up
                time_query(member, sql, params, member_id)
                time_query(owner, sql, params, None)
            runs = iterations if kind in ("list", "count") else max(5, iterations // 5)
            m_times, o_times = [], []
            # Interleaved, so both see the same drift, and in turns (member first, then owner
            # first): shared_buffers is small next to the data, and whichever runs first reads
            # the pages both need into it.
            for i in range(runs):
                if i % 2 == 0:
                    m_times.append(time_query(member, sql, params, member_id))
                    o_times.append(time_query(owner, sql, params, None))
                else:
                    o_times.append(time_query(owner, sql, params, None))
                    m_times.append(time_query(member, sql, params, member_id))
            measured.append((kind, name, sql, m_times, o_times))

    with psycopg.connect(url) as conn:
        conn.execute("load 'auto_explain'")
        conn.execute("set auto_explain.log_min_duration = 0")
        conn.execute("set auto_explain.log_nested_statements = on")
        conn.execute("set auto_explain.log_analyze = on")
        conn.execute("set auto_explain.log_buffers = on")
        conn.execute("set auto_explain.log_level = notice")
        conn.commit()
        for kind, name, sql, m_times, o_times in measured:
            m50, m95 = pct(m_times, 50), pct(m_times, 95)
            o50, o95 = pct(o_times, 50), pct(o_times, 95)
            overhead = m50 / o50 if o50 > 0 else float("nan")
            fast_ok = m95 < 10 if kind in ("list", "count") else None
            rls_ok = overhead <= 1.3
            met: bool | None = rls_ok and (fast_ok if fast_ok is not None else True)
            if kind == "reference":
                met, target = None, "none (not a dashboard query)"
            elif kind == "metrics":
                target = "RLS <= 1.30x"
            else:
                target = "p95 < 10 ms, RLS <= 1.30x"
            results.add(
                Row(
                    f"dashboard {kind}: {name}",
                    f"member p50 {m50:.2f} / p95 {m95:.2f} ms",
                    f"owner (no RLS) p50 {o50:.2f} / p95 {o95:.2f} ms",
                    overhead,
                    target,
                    met,
                )
            )
            if sql.startswith("explain"):
                continue  # count=planned: itself a plan, of a query listed above
            try:
                plan = explain(conn, sql, params, member_id)
            except psycopg.Error as exc:
                conn.rollback()
                plan = f"explain failed: {exc}"
            results.plans.append((name, f"-- {sql}\n{plan}"))


# ------------------------------------------------------------------------------ docs


def write_doc(results: Results, info: dict[str, str], command: str) -> None:
    start_mark, end_mark = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
    plans_start, plans_end = "<!-- bench:plans:start -->", "<!-- bench:plans:end -->"
    block = [
        start_mark,
        "",
        f"Machine: {info['nproc']} cores, {info['memory']}, {info['postgres']}, "
        f"Python {info['python']} "
        f"(load average before the run: {info['load_before']}; other work shared the machine).",
        f"Date: {info['date']}. Command: `{command}`.",
        "",
        table_markdown(results.rows),
        "",
    ]
    gen = results.details.get("generation")
    if gen:
        block += ["Generation steps (seconds):", "", "```", gen["steps"].strip(), "```", ""]
    block.append(end_mark)
    text = DOC.read_text() if DOC.exists() else ""
    if start_mark in text:
        head, rest = text.split(start_mark, 1)
        tail = rest.split(end_mark, 1)[1]
        text = head + "\n".join(block) + tail
    else:
        text += "\n## Results\n\n" + "\n".join(block) + "\n"
    if results.plans:
        plan_block = [plans_start, ""]
        for name, plan in results.plans:
            plan_block += [f"### {name}", "", "```", plan.strip(), "```", ""]
        plan_block.append(plans_end)
        if plans_start in text:
            head, rest = text.split(plans_start, 1)
            tail = rest.split(plans_end, 1)[1]
            text = head + "\n".join(plan_block) + tail
        else:
            text += "\n## Plans at scale\n\n" + "\n".join(plan_block) + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--only", choices=["ingest", "worker", "dashboard"])
    parser.add_argument("--practices", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--memberships", type=int, default=1_000_000)
    parser.add_argument(
        "--iterations", type=int, default=200, help="timed runs per dashboard list and count query"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (development)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help=f"reuse {SCALE_DB} when an earlier run generated it with the same parameters "
        "and generator",
    )
    args = parser.parse_args(argv)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = Results()
    if args.only in (None, "ingest"):
        bench_ingest(results, args.quick)
    if args.only in (None, "worker"):
        bench_worker(results, args.quick)
    if args.only in (None, "dashboard"):
        bench_dashboard(
            results,
            args.practices,
            args.payments,
            args.memberships,
            args.iterations,
            args.reuse_data,
        )
    command = "python -m scripts.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print("\n" + table_text(results.rows), flush=True)
    (RUN_DIR / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "command": command,
                "rows": [r.__dict__ for r in results.rows],
                "details": results.details,
            },
            indent=2,
            default=str,
        )
    )
    if not args.no_doc:
        write_doc(results, info, command.strip())
        say(
            f"results written to {DOC.relative_to(ROOT)} "
            f"and {RUN_DIR.relative_to(ROOT)}/results.json"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
