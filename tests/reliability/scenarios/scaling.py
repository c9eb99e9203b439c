"""Scenario 4: throughput with one, two and four workers."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.processes import start_worker, stop_process, worker_env
from tests.reliability.scenarios.traffic import new_sale, scalar, wait_until_drained
from tests.reliability.scenarios.truth import compare_with_truth, standin_truth
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import ingest_many, query
from tests.support.reliability_report import ScenarioResult

# ------------------------------------------------------------------ 4. four workers


def measure_throughput(
    db_url: str,
    standin: StandinHandle,
    merchant: Merchant,
    log_dir: Path,
    *,
    workers: int,
    events: int,
    env: dict[str, str],
    timeout: float,
) -> float:
    """Queue ``events``, start ``workers`` processes, return events/s from the first
    processed event (process start-up excluded) to the last: after the drain, from the
    events' own ``processed_at`` times (as scripts/bench/worker.py ``drain_rate`` does)."""
    rng = random.Random(workers)
    payloads = [new_sale(standin.state, merchant.mx_merchant_id, rng) for _ in range(events)]
    after_id = scalar(db_url, "select coalesce(max(id), 0) from app.webhook_events")
    ingest_many(db_url, merchant.token, payloads)
    procs = [start_worker(env, log_dir / f"scale-{workers}-{i}.log") for i in range(workers)]
    try:
        wait_until_drained(db_url, timeout, procs)
    finally:
        for proc in procs:
            stop_process(proc)
    processed, first, last = query(
        db_url,
        "select count(*), min(processed_at), max(processed_at) from app.webhook_events "
        "where id > %s and status = 'processed'",
        (after_id,),
    )[0]
    span = (last - first).total_seconds() if first and last else 0.0
    if processed < 2 or span <= 0:
        raise AssertionError(f"{processed} events processed in {span:.3f}s: no rate to measure")
    # the first event opens the span: the rate counts the ones processed after it
    return float((processed - 1) / span)


def run_scaling(
    db_url: str,
    standin: StandinHandle,
    log_dir: Path,
    *,
    events_one: int,
    events_four: int,
    latency_ms: float = 50,
    timeout: float = 180,
) -> tuple[ScenarioResult, dict[str, Any]]:
    """One worker, then four, on the same queue, the stand-in answering after
    ``latency_ms``. No event may be claimed twice (attempts stay 1), no row may exist twice,
    and four workers must be faster than one."""
    started = time.monotonic()
    merchant = onboard(db_url, standin, 1000034004)
    standin.state.configure(latency_ms=latency_ms)
    env = worker_env(
        db_url,
        standin.base_url,
        WORKER_CONCURRENCY="4",
        MX_PER_MERCHANT_CONCURRENCY="4",
        WORKER_BATCH_SIZE="4",
        WORKER_VISIBILITY_SECONDS="30",
        MX_TOTAL_TIMEOUT_SECONDS="5",
        MX_READ_TIMEOUT_SECONDS="5",
    )
    try:
        one = measure_throughput(
            db_url,
            standin,
            merchant,
            log_dir,
            workers=1,
            events=events_one,
            env=env,
            timeout=timeout,
        )
        four = measure_throughput(
            db_url,
            standin,
            merchant,
            log_dir,
            workers=4,
            events=events_four,
            env=env,
            timeout=timeout,
        )
    finally:
        standin.state.configure(latency_ms=0)
    ledger = compare_with_truth(
        db_url, standin_truth(standin.state, merchant.mx_merchant_id), dead_allowed=False
    )
    claimed_twice = scalar(db_url, "select count(*) from app.webhook_events where attempts <> 1")
    problems = list(ledger.problems)
    if claimed_twice:
        problems.append(f"{claimed_twice} events claimed more than once")
    ratio = four / one
    result = ScenarioResult(
        scenario="4 four workers",
        load=f"{events_one} events x 1 worker, {events_four} x 4 workers",
        faults=f"MX latency {latency_ms:.0f} ms",
        bad_inputs=0,
        lost=ledger.lost,
        double_applied=ledger.double_applied + claimed_twice,
        seconds=time.monotonic() - started,
        passed=not problems,
        details={
            "events_per_s_1": round(one, 1),
            "events_per_s_4": round(four, 1),
            "ratio": round(ratio, 2),
            "statuses": ledger.statuses,
        },
    )
    return result, {"problems": problems, "ratio": ratio}
