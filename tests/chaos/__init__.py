"""Reliability scenarios. One test per scenario (tests/test_reliability_*.py) runs each at two
sizes: ``short`` in ``make test``, ``long`` (marked chaos) in ``make chaos``, which also runs
tests/chaos/test_replay_large_dlq.py. Each scenario function takes its size as arguments,
asserts nothing itself and returns a ``ScenarioResult`` plus the raw numbers; the callers
record the result and then assert.

Docs: docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from mxstandin.server import StandinHandle
from mxstandin.state import StandinState
from scripts.procs import free_port
from tests.conftest import Merchant, create_merchant, onboard
from tests.pipeline import UNFINISHED_SQL, ingest_many, query, unfinished
from tests.reliability_report import ScenarioResult

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = [
    "Testosterone Cypionate 200mg/ml",
    "Semaglutide 2.5mg",
    "Tirzepatide 10mg",
    "BPC-157 5mg",
    "Sermorelin 9mg",
    "Lab Panel",
]


# ------------------------------------------------------------------ merchants and traffic


def new_sale(state: StandinState, mx_merchant_id: int, rng: random.Random) -> dict[str, Any]:
    """A sale of 1-3 products in the stand-in; returns the MX webhook body for it."""
    lines = [{"product_name": name} for name in rng.sample(PRODUCTS, rng.randint(1, 3))]
    return state.create_sale(mx_merchant_id, lines=lines)["webhook"]


CONNECT_TIMEOUT = 5  # seconds: a check against a server that does not answer fails, not hangs


def scalar(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return query(db_url, sql, params, connect_timeout=CONNECT_TIMEOUT)[0][0]


def event_statuses(db_url: str) -> dict[str, int]:
    return dict(
        query(
            db_url,
            "select status, count(*) from app.webhook_events group by 1",
            connect_timeout=CONNECT_TIMEOUT,
        )
    )


def wait_until_drained(db_url: str, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll on one connection until no event is queued or retrying; fail if a worker exits
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        while left := _count(conn, UNFINISHED_SQL):
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(f"a worker exited with {proc.returncode} before draining")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} events unfinished after {timeout}s")
            time.sleep(0.2)


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------ the stand-in's truth


@dataclass
class Truth:
    """What MX holds for the payments a scenario created: the rows the database must have."""

    payment_ids: set[int]
    invoice_lines: int
    customers: int


def standin_truth(state: StandinState, mx_merchant_id: int) -> Truth:
    with state.lock:
        pids = set(state.merchant_payments.get(mx_merchant_id, []))
        lines = 0
        for pid in pids:
            for iid in state.payments[pid].get("invoiceIds") or []:
                lines += len(state.invoices[iid]["purchases"])
        customers = {state.payment_meta[pid]["customer_id"] for pid in pids}
    return Truth(pids, lines, len(customers))


@dataclass
class Ledger:
    """The database compared with the stand-in's truth."""

    statuses: dict[str, int]
    lost: int
    double_applied: int
    problems: list[str] = field(default_factory=list)


DUPLICATE_ROW_CHECKS = {
    "webhook event recorded twice": "select count(*) from (select mx_merchant_id, event_type, "
    "payment_id from app.webhook_events where payment_id is not null group by 1, 2, 3 "
    "having count(*) > 1) as d",
    "patient twice": "select count(*) from (select practice_id, mx_customer_id from app.patients "
    "where mx_customer_id is not null group by 1, 2 having count(*) > 1) as d",
    "membership twice": "select count(*) from (select practice_id, patient_id, category_id "
    "from app.memberships group by 1, 2, 3 having count(*) > 1) as d",
    "invoice line twice": "select count(*) from (select invoice_id, mx_purchase_id "
    "from app.invoice_lines group by 1, 2 having count(*) > 1) as d",
}


def compare_with_truth(db_url: str, truth: Truth, *, dead_allowed: bool) -> Ledger:
    """Lost: an accepted event that is not processed or dead-lettered, or a payment MX holds
    that is neither in app.payments nor dead-lettered. Double: any row beyond MX's truth
    (payments, invoice lines, patients), any row that exists twice by its natural key, any
    processed event whose payment is missing (applied as something else)."""
    statuses = event_statuses(db_url)
    problems: list[str] = []
    lost = statuses.get("queued", 0) + statuses.get("retrying", 0)
    if lost:
        problems.append(f"{lost} events still queued or retrying")
    if not dead_allowed and statuses.get("dead", 0):
        problems.append(f"{statuses['dead']} events dead-lettered")
    db_payments = {
        pid
        for (pid,) in query(db_url, "select id from app.payments", connect_timeout=CONNECT_TIMEOUT)
    }
    dead_payments = {
        pid
        for (pid,) in query(
            db_url,
            "select payment_id from app.webhook_events where status = 'dead'",
            connect_timeout=CONNECT_TIMEOUT,
        )
    }
    missing = truth.payment_ids - db_payments - dead_payments
    if missing:
        problems.append(f"{len(missing)} MX payments neither stored nor dead-lettered")
    lost = max(lost, len(missing))
    processed_without_row = scalar(
        db_url,
        "select count(*) from app.webhook_events as e where e.status = 'processed' "
        "and not exists (select from app.payments as p where p.id = e.payment_id)",
    )
    if processed_without_row:
        problems.append(f"{processed_without_row} processed events without their payment")
        lost += processed_without_row

    double = 0
    extra_payments = len(db_payments - truth.payment_ids)
    if extra_payments:
        problems.append(f"{extra_payments} payments MX does not have")
        double += extra_payments
    if not dead_payments:
        lines = scalar(db_url, "select count(*) from app.invoice_lines")
        patients = scalar(db_url, "select count(*) from app.patients")
        if lines != truth.invoice_lines:
            problems.append(f"invoice lines {lines} != MX {truth.invoice_lines}")
            double += max(0, lines - truth.invoice_lines)
            lost += max(0, truth.invoice_lines - lines)
        if patients != truth.customers:
            problems.append(f"patients {patients} != MX customers {truth.customers}")
            double += max(0, patients - truth.customers)
    for name, sql in DUPLICATE_ROW_CHECKS.items():
        n = scalar(db_url, sql)
        if n:
            problems.append(f"{n} x {name}")
            double += n
    return Ledger(statuses, lost, double, problems)


# ------------------------------------------------------------------ processes


def worker_env(db_url: str, mx_base_url: str, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MX_BASE_URL": mx_base_url,
        "WORKER_POLL_INTERVAL_SECONDS": "0.05",
        "WORKER_BACKOFF_BASE_SECONDS": "0.5",
        "WORKER_BACKOFF_MAX_SECONDS": "2",
        "MX_CONNECT_TIMEOUT_SECONDS": "2",
        "MX_READ_TIMEOUT_SECONDS": "2",
        "MX_TOTAL_TIMEOUT_SECONDS": "2",
        "WORKER_VISIBILITY_SECONDS": "4",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
        "WORKER_METRICS_PORT": "0",  # several workers on one machine
        "SCHEDULER_ENABLED": "false",  # no reconcile calls to muddy the counts
        "ALERT_CHECK_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m worker run``; stderr to a file (a pipe nobody reads would block it)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def start_webhook_process(
    db_url: str, log_path: Path, **overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m webhook`` on a free loopback port; waits for /healthz."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_RATE_PER_TOKEN": "0",
        "WEBHOOK_RATE_PER_ADDRESS": "0",
        "DB_CONNECT_TIMEOUT_SECONDS": "1",
        "DB_RECONNECT_TIMEOUT_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webhook"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"webhook did not start; see {log_path}")
        time.sleep(0.1)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Background(threading.Thread):
    """A thread whose exception is re-raised by ``join_or_raise``."""

    def __init__(self, target: Any, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc

    def join_or_raise(self, timeout: float | None = None) -> None:
        self.join(timeout)
        if self.error is not None:
            raise self.error


# ------------------------------------------------------------------ 1. kill -9 the worker


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
    from tests.private_postgres import private_postgres

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


# ------------------------------------------------------------------ 3. MX failing 30 %

FAULT_SHARE = 0.10  # each of 500, 429 + Retry-After, hang: 10 % of MX calls, 30 % in all


def add_mx_faults(state: StandinState, share: float = FAULT_SHARE) -> None:
    """Three faults of ``share`` each. The stand-in tries faults in order and applies the
    first that fires, so the later probabilities are raised to keep each at ``share``."""
    prefix = "/checkout/v3"
    state.add_fault({"path_prefix": prefix, "kind": "status", "status": 500, "probability": share})
    state.add_fault(
        {
            "path_prefix": prefix,
            "kind": "status",
            "status": 429,
            "retry_after": 1,
            "probability": share / (1 - share),
        }
    )
    state.add_fault({"path_prefix": prefix, "kind": "hang", "probability": share / (1 - 2 * share)})


REPLAY_COMMAND = "python -m worker deadletters replay --all-since"


def replay_dead_letters(db_url: str, since: str) -> int:
    """Replay every event dead since ``since`` with the operator command; returns how many
    events were replayed."""
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    before = int(scalar(db_url, "select count(*) from app.event_replays"))
    done = subprocess.run(
        [sys.executable, "-m", "worker", "deadletters", "replay", "--all-since", since],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"deadletters replay failed: {done.stderr}\n{done.stdout}")
    return int(scalar(db_url, "select count(*) from app.event_replays")) - before


async def run_mx_faults(
    db_url: str,
    standin: StandinHandle,
    *,
    events: int,
    max_attempts: int = 3,
    workers: int = 1,
    drain_timeout: float = 300,
) -> tuple[ScenarioResult, dict[str, Any]]:
    """``events`` sales while 30 % of MX calls fail (500, 429 with Retry-After, hang until
    the client's read timeout). With few attempts allowed some events are dead-lettered:
    each must carry a reason and a dead letter. Then the faults stop, the dead letters are
    replayed, and every one of them must be processed."""
    import asyncio

    from tests.pipeline import drain, worker_settings

    started = time.monotonic()
    problems: list[str] = []
    merchant = onboard(db_url, standin, 1000033003)
    rng = random.Random(3)
    payloads = [new_sale(standin.state, merchant.mx_merchant_id, rng) for _ in range(events)]
    since = scalar(db_url, "select now()::text")
    ingest_many(db_url, merchant.token, payloads)
    add_mx_faults(standin.state)
    settings = worker_settings(
        db_url,
        standin.base_url,
        worker_concurrency=16,
        worker_max_attempts=max_attempts,
        mx_per_merchant_concurrency=16,
        worker_metrics_port=0,
        scheduler_enabled=False,
        alert_check_seconds=0,
    )
    await drain(settings, workers=workers, timeout=drain_timeout)
    counters = standin.state.read_counters()
    faults = {
        f"{f['kind']}{f['status'] if f['kind'] == 'status' else ''}": f["applied"]
        for f in counters["faults"]
    }
    mx_calls = counters["total"]
    standin.state.clear_faults()

    statuses = event_statuses(db_url)
    dead = statuses.get("dead", 0)
    no_reason = scalar(
        db_url,
        "select count(*) from app.webhook_events where status = 'dead' "
        "and coalesce(btrim(last_error), '') = ''",
    )
    if no_reason:
        problems.append(f"{no_reason} dead events without a reason")
    # every dead letter, not one per event id: a second one for the same event is a problem
    dead_letters = [
        (int(event_id), reason)
        for event_id, reason in query(
            db_url,
            "select (message ->> 'event_id')::bigint, message ->> 'reason' "
            "from pgmq.q_mx_ingest_dlq",
        )
    ]
    letters_per_event = Counter(event_id for event_id, _reason in dead_letters)
    dead_ids = {
        i for (i,) in query(db_url, "select id from app.webhook_events where status = 'dead'")
    }
    if len(dead_letters) != len(dead_ids):
        problems.append(
            f"{len(dead_letters)} messages in mx_ingest_dlq for {len(dead_ids)} dead events"
        )
    if set(letters_per_event) != dead_ids:
        problems.append(
            f"dead letters for {len(letters_per_event)} events do not match dead events "
            f"{len(dead_ids)} (missing {len(dead_ids - set(letters_per_event))})"
        )
    repeated = {i: n for i, n in letters_per_event.items() if n > 1}
    if repeated:
        problems.append(f"{len(repeated)} dead events with more than one dead letter")
    if any(not (reason or "").strip() for _event_id, reason in dead_letters):
        problems.append("a dead letter without a reason")
    first_pass = compare_with_truth(
        db_url, standin_truth(standin.state, merchant.mx_merchant_id), dead_allowed=True
    )
    problems.extend(first_pass.problems)
    reasons = Counter(
        (r or "")[:40]
        for (r,) in query(db_url, "select last_error from app.webhook_events where status = 'dead'")
    )

    replayed = await asyncio.to_thread(replay_dead_letters, db_url, since)
    if replayed != dead:
        problems.append(f"replayed {replayed} of {dead} dead events")
    await drain(settings, workers=workers, timeout=drain_timeout)
    after = compare_with_truth(
        db_url, standin_truth(standin.state, merchant.mx_merchant_id), dead_allowed=False
    )
    problems.extend(f"after replay: {p}" for p in after.problems)
    left_in_dlq = scalar(db_url, "select count(*) from pgmq.q_mx_ingest_dlq")
    if left_in_dlq:
        problems.append(f"{left_in_dlq} dead letters left after the replay")
    result = ScenarioResult(
        scenario="3 MX failing 30%",
        load=f"{events} events, {mx_calls} MX calls",
        faults=", ".join(f"{n} x {k}" for k, n in faults.items()),
        bad_inputs=0,
        lost=first_pass.lost + after.lost,
        double_applied=first_pass.double_applied + after.double_applied,
        seconds=time.monotonic() - started,
        passed=not problems,
        details={
            "first_pass": statuses,
            "dead_reasons": dict(reasons.most_common(3)),
            "replayed": replayed,
            "replay_via": REPLAY_COMMAND,
            "after_replay": after.statuses,
        },
    )
    return result, {"problems": problems, "dead": dead, "replayed": replayed}


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
    events' own ``processed_at`` times (as scripts/bench.py ``drain_rate`` does)."""
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


# ------------------------------------------------------------------ 5. fuzz the webhook

SQL_META = [
    "'; drop table app.webhook_events; --",
    '" or 1=1 --',
    "1; select pg_sleep(10)",
    "$$; delete from app.payments; $$",
    "\\x00\\'",
    "%s %(x)s {0}",
    "E'\\\\'",
    "/* */ union select * from pg_authid",
]
ODD_UNICODE = [
    "\u202etxet desrever",
    "Zo\u0308e\u0301 \u0301",
    "\U0001f4a9\U0001f525" * 20,
    "\ufeff\u200b\u2060",
    "\uffff\ufffe",
    "\u0130\u0131\u00df",
    "\u03a9\u2248\u00e7\u221a\u222b\u02dc\u00b5\u2264\u2265\u00f7",
    "\u0000-after-nul",
    "4111 1111 1111 1111",
]
EVENT_TYPES = ["PaymentSuccess", "PaymentFail", "RefundCreated", "ContractCreated", "", "payment"]
RAW_BODIES = [
    b"",
    b"   ",
    b"null",
    b"[]",
    b"[{}]",
    b"123",
    b'"PaymentSuccess"',
    b"{",
    b'{"eventType": "PaymentSuccess", "merchantId": 1, "id": NaN}',
    b'{"eventType": "PaymentSuccess", "id": 1e999999}',
    b'{"eventType": "\\ud800", "merchantId": "1"}',
    b'{"eventType": "PaymentSuccess", "merchantId": "\\u0000"}',
    b'{"a": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b'{"eventType": "PaymentSuccess", "eventType": "PaymentFail"}',
    b'{"id": ' + b"9" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 40 + b"1" + b"}" * 40,
]


def _strategies(merchant_id: int) -> Any:
    from hypothesis import strategies as st

    text = st.one_of(
        st.text(max_size=30),
        st.sampled_from(SQL_META),
        st.sampled_from(ODD_UNICODE),
        st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    )
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    value = st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )
    mid = st.one_of(
        st.just(str(merchant_id)),
        st.just(merchant_id),
        st.just(str(merchant_id + 1)),
        value,
    )
    payment_id = st.one_of(
        st.integers(min_value=1, max_value=10**18).map(str),
        st.integers(min_value=-(10**20), max_value=10**20),
        value,
    )
    base = st.fixed_dictionaries(
        {"eventType": st.one_of(st.sampled_from(EVENT_TYPES), value), "merchantId": mid},
        optional={
            "id": payment_id,
            "amount": st.one_of(st.just("181.12"), value),
            "transactionDate": st.one_of(st.just("2030-01-01T09:00:00Z"), value),
            "customer": value,
        },
    )
    with_extra = st.tuples(base, st.dictionaries(text, value, max_size=3)).map(
        lambda t: {**t[1], **t[0]}
    )
    objects = st.one_of(with_extra, st.dictionaries(text, value, max_size=6))
    as_json = st.one_of(objects, value).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    huge = st.tuples(st.integers(60_000, 70_000), st.sampled_from(["x", "é", "\U0001f4a9"])).map(
        lambda t: json.dumps(
            {
                "eventType": "PaymentSuccess",
                "merchantId": str(merchant_id),
                "id": "1",
                "memo": t[1] * (t[0] // len(t[1].encode())),
            },
            ensure_ascii=False,
        ).encode()
    )
    body = st.one_of(
        as_json, as_json, as_json, st.sampled_from(RAW_BODIES), st.binary(max_size=200), huge
    )
    token_kind = st.sampled_from(["valid"] * 8 + ["wrong", "hostile"])
    content_type = st.sampled_from(["application/json", "text/plain", None, "application/xml"])
    return st.tuples(body, token_kind, content_type)


@dataclass
class FuzzTally:
    statuses: Counter[int] = field(default_factory=Counter)
    stored_expected: int = 0  # answers that promise a stored row (or a counted duplicate)
    event_ids: Counter[int] = field(default_factory=Counter)  # event id -> 200 answers naming it
    server_errors: list[str] = field(default_factory=list)
    requests: int = 0
    bad_inputs: int = 0  # webhook posts the webhook did not accept (any non-2xx answer)
    answers: Counter[str] = field(default_factory=Counter)  # "status error" of valid-token posts

    def note(self, response: httpx.Response, valid_token: bool, sample: str) -> None:
        """One post to the webhook and its answer."""
        self.requests += 1
        status = response.status_code
        self.statuses[status] += 1
        if not 200 <= status < 300:
            self.bad_inputs += 1
        if status >= 500:
            self.server_errors.append(f"{status} for {sample[:160]!r}")
            return
        if not valid_token:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error", body.get("status")) if isinstance(body, dict) else "not json"
        self.answers[f"{status} {error}"] += 1
        if status in (400, 403, 422):
            self.stored_expected += 1
        elif status == 200:
            assert isinstance(body, dict), (status, response.text)
            self.event_ids[int(body["event_id"])] += 1
            self.stored_expected += 1


def fuzz_with_hypothesis(
    base_url: str, token: str, merchant_id: int, tally: FuzzTally, *, examples: int
) -> None:
    from urllib.parse import quote

    from hypothesis import HealthCheck, given, settings

    url = f"{base_url}/webhooks/mx/"
    with httpx.Client(timeout=30) as client:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=_strategies(merchant_id))
        def fuzz(case: tuple[bytes, str, str | None]) -> None:
            body, token_kind, content_type = case
            path_token = {
                "valid": token,
                "wrong": token[:-2] + "zz",
                "hostile": quote("' or 1=1 --/\u202e", safe=""),
            }[token_kind]
            headers = {"content-type": content_type} if content_type else {}
            response = client.post(url + path_token, content=body, headers=headers)
            tally.note(response, token_kind == "valid", body.decode("utf-8", "replace"))
            assert response.status_code < 500, (response.status_code, response.text, body[:300])

        fuzz()


def fuzz_with_schemathesis(base_url: str, token: str, tally: FuzzTally, *, examples: int) -> None:
    """Every operation of the app's own OpenAPI schema, cases generated by schemathesis
    (positive and negative); half the webhook cases use the real token so they get past
    authentication to the parser and the database."""
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    schema.config.generation.update(modes=list(schemathesis.GenerationMode))
    operations = [result.ok() for result in schema.get_all_operations()]
    with httpx.Client(timeout=30) as client:
        for operation in operations:
            _schemathesis_test(client, operation, base_url, token, tally, examples)()


def _schemathesis_test(
    client: httpx.Client,
    operation: Any,
    base_url: str,
    token: str,
    tally: FuzzTally,
    examples: int,
) -> Any:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    is_webhook = operation.path.startswith("/webhooks/")

    @settings(
        max_examples=examples if is_webhook else max(5, examples // 10),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), use_token=st.booleans())
    def run(case: Any, use_token: bool) -> None:
        valid = is_webhook and use_token
        if valid:
            case.path_parameters = {**(case.path_parameters or {}), "token": token}
        kwargs = case.as_transport_kwargs(base_url=base_url)
        for unused in ("verify", "cert", "timeout", "allow_redirects"):
            kwargs.pop(unused, None)
        if not kwargs.get("cookies"):
            kwargs.pop("cookies", None)
        response = client.request(**kwargs)
        if is_webhook:
            tally.note(response, valid, repr(case.body))
        else:
            tally.requests += 1
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                tally.server_errors.append(f"{response.status_code} {operation.path}")
        assert response.status_code < 500, (response.status_code, response.text, case.body)

    return run


@dataclass
class FuzzLedger:
    problems: list[str]
    lost: int  # 200 answers whose event id has no row in app.webhook_events
    double: int  # records beyond one per answer that promised one, or a payment event twice


def stored_row_problems(db_url: str, tally: FuzzTally) -> FuzzLedger:
    problems = []
    # a repeated body is stored once and counted in duplicate_count (rejected ones too);
    # rejects beyond WEBHOOK_REJECTS_PER_HOUR are counted, not stored (app.webhook_reject_counts)
    rows = scalar(
        db_url,
        "select count(*) + coalesce(sum(duplicate_count), 0)"
        " + (select coalesce(sum(not_stored), 0) from app.webhook_reject_counts)"
        " from app.webhook_events",
    )
    if rows != tally.stored_expected:
        problems.append(
            f"{rows} stored rows, duplicates and counted rejects, but {tally.stored_expected} "
            "answers promised one"
        )
    double = max(0, rows - tally.stored_expected)
    same_payment_twice = scalar(db_url, DUPLICATE_ROW_CHECKS["webhook event recorded twice"])
    if same_payment_twice:
        problems.append(f"{same_payment_twice} x webhook event recorded twice")
        double += same_payment_twice
    unclear = scalar(
        db_url,
        "select count(*) from app.webhook_events where status is null "
        "or status not in ('queued', 'ignored', 'rejected') "
        "or (status = 'rejected' and coalesce(btrim(reject_reason), '') = '') "
        "or (status = 'queued' and msg_id is null)",
    )
    if unclear:
        problems.append(f"{unclear} stored rows without a clear status or reason")
    known = {i for (i,) in query(db_url, "select id from app.webhook_events")}
    missing = set(tally.event_ids) - known
    if missing:
        problems.append(f"{len(missing)} acknowledged event ids not stored")
    lost = sum(tally.event_ids[i] for i in missing)
    return FuzzLedger(problems, lost, double)


def run_fuzz(
    db_url: str, *, hypothesis_examples: int, schemathesis_examples: int
) -> tuple[ScenarioResult, dict[str, Any]]:
    from tests.webhook_server import start_webhook

    started = time.monotonic()
    merchant = create_merchant(db_url, 1000035005)
    tally = FuzzTally()
    problems: list[str] = []
    with start_webhook(db_url, webhook_rate_per_token=0, webhook_rate_per_address=0) as server:
        for name, fn in (
            (
                "hypothesis",
                lambda: fuzz_with_hypothesis(
                    server.base_url,
                    merchant.token,
                    merchant.mx_merchant_id,
                    tally,
                    examples=hypothesis_examples,
                ),
            ),
            (
                "schemathesis",
                lambda: fuzz_with_schemathesis(
                    server.base_url, merchant.token, tally, examples=schemathesis_examples
                ),
            ),
        ):
            try:
                fn()
            except AssertionError as exc:
                problems.append(f"{name}: {str(exc)[:600]}")
    ledger = stored_row_problems(db_url, tally)
    problems.extend(ledger.problems)
    if tally.server_errors:
        problems.append(f"{len(tally.server_errors)} x 5xx, first: {tally.server_errors[0]}")
    stored = event_statuses(db_url)
    result = ScenarioResult(
        scenario="5 fuzz webhook",
        load=f"{tally.requests} requests (hypothesis + schemathesis)",
        faults="hostile bodies, tokens, content types",
        bad_inputs=tally.bad_inputs,
        lost=ledger.lost,
        double_applied=ledger.double,
        seconds=time.monotonic() - started,
        passed=not problems,
        details={
            "responses": dict(sorted(tally.statuses.items())),
            "stored": stored,
            "server_errors": len(tally.server_errors),
            "valid_token_answers": dict(tally.answers),
        },
    )
    return result, {"problems": problems, "tally": tally}
