"""Scenario 2: restart Postgres under load (a private cluster, never the shared server)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.processes import (
    Background,
    start_webhook_process,
    start_worker,
    stop_process,
    tail,
    worker_env,
)
from tests.reliability.scenarios.traffic import CONNECT_TIMEOUT, new_sale, wait_until_drained
from tests.reliability.scenarios.truth import compare_with_truth, standin_truth
from tests.support.merchants import onboard
from tests.support.pipeline import query
from tests.support.private_postgres import private_postgres
from tests.support.reliability_report import ScenarioResult

# ------------------------------------------------------------------ 2. restart Postgres


@dataclass
class PostOutcome:
    payment_id: int
    event_type: str
    kind: str  # 2xx | 5xx | connection | other
    status: int | None


def post_webhook(client: httpx.Client, url: str, payload: dict[str, Any]) -> PostOutcome:
    pid, etype = int(payload["id"]), str(payload["eventType"])
    try:
        response = client.post(url, json=payload)
    except httpx.TransportError:
        return PostOutcome(pid, etype, "connection", None)
    status = response.status_code
    kind = "2xx" if 200 <= status < 300 else "5xx" if status >= 500 else "other"
    return PostOutcome(pid, etype, kind, status)


def run_pg_restart(
    standin: StandinHandle,
    log_dir: Path,
    *,
    events: int,
    restarts: int,
    senders: int = 4,
    down_seconds: float = 1.0,
    drain_timeout: float = 120,
) -> tuple[ScenarioResult, dict[str, Any]]:
    """A private Postgres cluster; ``python -m webhook`` and ``python -m worker run`` against
    it; ``senders`` threads POST ``events`` webhooks while the cluster is restarted
    ``restarts`` times (down ``down_seconds`` each). Every 2xx must be in the database;
    everything else must be a 5xx or a connection error; afterwards a new request succeeds,
    the failed ones are sent again (as MX retries) and the worker, never restarted, drains
    everything."""

    started = time.monotonic()
    facts: dict[str, Any] = {"problems": []}
    problems: list[str] = facts["problems"]
    with private_postgres() as cluster:
        db_url = cluster.project_database()
        merchant = onboard(db_url, standin, 1000032002)
        rng = random.Random(2)
        payloads = [new_sale(standin.state, merchant.mx_merchant_id, rng) for _ in range(events)]
        standin.state.configure(latency_ms=20)
        webhook, base = start_webhook_process(db_url, log_dir / "pg-webhook.log")
        worker = start_worker(
            worker_env(db_url, standin.base_url, DB_CONNECT_TIMEOUT_SECONDS="1"),
            log_dir / "pg-worker.log",
        )
        url = f"{base}/webhooks/mx/{merchant.token}"
        outcomes: list[PostOutcome] = []
        lock = threading.Lock()
        sent = [0]

        def send(share: list[dict[str, Any]]) -> None:
            with httpx.Client(timeout=10) as client:
                for payload in share:
                    outcome = post_webhook(client, url, payload)
                    with lock:
                        outcomes.append(outcome)
                        sent[0] += 1
                    time.sleep(0.002)

        threads = [
            Background(lambda i=i: send(payloads[i::senders]), f"sender-{i}")
            for i in range(senders)
        ]
        restart_seconds: list[float] = []
        try:
            for thread in threads:
                thread.start()
            for k in range(1, restarts + 1):
                while sent[0] < events * k // (restarts + 1) and any(t.is_alive() for t in threads):
                    time.sleep(0.02)
                t0 = time.monotonic()
                cluster.stop()  # pg_ctl -m fast: open connections are cut
                time.sleep(down_seconds)
                cluster.start()
                restart_seconds.append(round(time.monotonic() - t0, 2))
            for thread in threads:
                thread.join_or_raise(300)

            # the webhook recovers without a restart: a new request succeeds
            t0 = time.monotonic()
            probe = new_sale(standin.state, merchant.mx_merchant_id, rng)
            with httpx.Client(timeout=10) as client:
                while True:
                    first = post_webhook(client, url, probe)
                    if first.kind == "2xx" or time.monotonic() - t0 > 30:
                        break
                    time.sleep(0.2)
                facts["webhook_recovery_s"] = round(time.monotonic() - t0, 2)
                if first.kind != "2xx":
                    problems.append(f"webhook did not recover: {first}")
                outcomes.append(first)
                # MX retries what was not acknowledged
                failed_ids = {o.payment_id for o in outcomes if o.kind != "2xx"}
                retried = [p for p in payloads if int(p["id"]) in failed_ids]
                retry_outcomes = [post_webhook(client, url, p) for p in retried]
            if any(o.kind != "2xx" for o in retry_outcomes):
                problems.append(
                    f"{sum(o.kind != '2xx' for o in retry_outcomes)} MX retries still failed"
                )

            # every 2xx, the burst's and the retries', must be in the database
            acked = {
                (o.payment_id, o.event_type) for o in outcomes + retry_outcomes if o.kind == "2xx"
            }
            stored = set(
                query(
                    db_url,
                    "select payment_id, event_type from app.webhook_events",
                    connect_timeout=CONNECT_TIMEOUT,
                )
            )
            missing_acked = acked - stored
            if missing_acked:
                problems.append(f"{len(missing_acked)} acknowledged events not in the database")
            kinds = Counter(o.kind for o in outcomes)
            if kinds["other"]:
                statuses = Counter(o.status for o in outcomes if o.kind == "other")
                problems.append(f"unexpected statuses during the restarts: {dict(statuses)}")

            # the worker recovers without a restart and drains everything
            try:
                wait_until_drained(db_url, drain_timeout, [worker])
            except (TimeoutError, AssertionError) as exc:
                problems.append(f"worker did not drain: {exc}")
            if worker.poll() is not None:
                problems.append(
                    f"worker exited ({worker.returncode}):\n{tail(log_dir / 'pg-worker.log')}"
                )
            ledger = compare_with_truth(
                db_url, standin_truth(standin.state, merchant.mx_merchant_id), dead_allowed=False
            )
            problems.extend(ledger.problems)
        finally:
            for thread in threads:
                thread.join(60)
            stop_process(worker)
            stop_process(webhook)
            standin.state.configure(latency_ms=0)
    facts.update(
        kinds=dict(kinds),
        retried=len(retried),
        restart_seconds=restart_seconds,
        statuses=ledger.statuses,
    )
    result = ScenarioResult(
        scenario="2 restart Postgres",
        load=f"{events} webhooks by {senders} senders + worker",
        faults=f"{restarts} x Postgres restart ({kinds['5xx']} x 5xx, "
        f"{kinds['connection']} x conn error)",
        bad_inputs=0,
        lost=len(missing_acked) + ledger.lost,
        double_applied=ledger.double_applied,
        seconds=time.monotonic() - started,
        passed=not problems,
        details={k: v for k, v in facts.items() if k != "problems" or v},
    )
    return result, facts
