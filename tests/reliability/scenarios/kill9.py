"""Scenario 1: kill -9 the worker while traffic flows; nothing is lost or applied twice."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.processes import (
    Background,
    start_worker,
    stop_process,
    tail,
    worker_env,
)
from tests.reliability.scenarios.traffic import new_sale, scalar, wait_until_drained
from tests.reliability.scenarios.truth import Ledger, compare_with_truth, standin_truth
from tests.support.merchants import onboard
from tests.support.pipeline import ingest_many, unfinished
from tests.support.reliability_report import ScenarioResult

# ------------------------------------------------------------------ 1. kill -9 the worker

CLAIMS_SQL = "select coalesce(sum(attempts), 0) from app.webhook_events"


def run_kill9(
    db_url: str,
    standin: StandinHandle,
    log_dir: Path,
    *,
    events: int,
    kill_every: tuple[float, float] = (1.0, 2.5),
    max_kills: int = 50,
    duplicate_share: float = 0.05,
    drain_timeout: float = 120,
) -> tuple[ScenarioResult, Ledger]:
    """A burst of ``events`` sales arrives (through the webhook's procedure) while a
    ``python -m worker run`` subprocess is killed with SIGKILL every few seconds and
    started again. Some webhooks arrive twice, as MX does."""
    started = time.monotonic()
    merchant = onboard(db_url, standin, 1000031001)
    rng = random.Random(1)
    outcomes: Counter[str] = Counter()

    def webhooks() -> Iterator[dict[str, Any]]:
        """Sales created one by one while they are sent, some sent twice."""
        for _ in range(events):
            payload = new_sale(standin.state, merchant.mx_merchant_id, rng)
            for _copy in range(2 if rng.random() < duplicate_share else 1):
                yield payload

    def produce() -> None:
        outcomes.update(ingest_many(db_url, merchant.token, webhooks()))

    env = worker_env(db_url, standin.base_url, WORKER_CONCURRENCY="8")
    log = log_dir / "kill9-worker.log"
    producer = Background(produce, "kill9-producer")
    producer.start()
    proc = start_worker(env, log)
    kills = 0
    try:
        while kills < max_kills and (producer.is_alive() or unfinished(db_url) > events // 20):
            # the kill lands while this worker holds work: once it has claimed something (on a
            # busy machine its start-up alone can outlast a fixed interval), then a while later
            claimed_before = scalar(db_url, CLAIMS_SQL)
            deadline = time.monotonic() + 30
            while scalar(db_url, CLAIMS_SQL) == claimed_before and time.monotonic() < deadline:
                assert proc.poll() is None, f"worker died on its own:\n{tail(log)}"
                time.sleep(0.05)
            time.sleep(rng.uniform(*kill_every))
            assert proc.poll() is None, f"worker died on its own:\n{tail(log)}"
            proc.kill()  # SIGKILL: nothing finished, nothing released
            proc.wait()
            kills += 1
            proc = start_worker(env, log)
        producer.join_or_raise()
        wait_until_drained(db_url, drain_timeout, [proc])
    finally:
        stop_process(proc)
        producer.join(30)
    ledger = compare_with_truth(
        db_url, standin_truth(standin.state, merchant.mx_merchant_id), dead_allowed=False
    )
    redelivered = scalar(db_url, "select count(*) from app.webhook_events where attempts > 1")
    max_attempts = scalar(db_url, "select max(attempts) from app.webhook_events")
    result = ScenarioResult(
        scenario="1 kill -9 worker",
        load=f"{events} events (+{outcomes['duplicate']} duplicate webhooks)",
        faults=f"{kills} x kill -9",
        bad_inputs=0,
        lost=ledger.lost,
        double_applied=ledger.double_applied,
        seconds=time.monotonic() - started,
        passed=not ledger.problems,
        details={
            "statuses": ledger.statuses,
            "redelivered_events": redelivered,
            "max_attempts": max_attempts,
            "problems": ledger.problems,
        },
    )
    return result, ledger
