"""(a) ingest: wrk against the webhook, an open-loop run for p99, and pgbench on the same
call as the ceiling."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import uvloop

from scripts import localdb
from scripts.bench.harness import (
    CONCURRENCY,
    ROOT,
    RUN_DIR,
    make_practice,
    median,
    median_round,
    mx_body,
    pgbench,
    run_wrk,
    say,
    webhook_env,
)
from scripts.bench.load import open_loop
from scripts.bench.report import Results, Row
from scripts.procs import free_port, start, stop, wait_http


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
    env = webhook_env(webhook_url, port)

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
