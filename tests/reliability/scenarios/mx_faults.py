"""Scenario 3: MX failing 30 % of calls (500, 429 + Retry-After, hangs); dead letters replayed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from mxstandin.server import StandinHandle
from mxstandin.state import StandinState
from tests.reliability.scenarios.traffic import ROOT, event_statuses, new_sale, scalar
from tests.reliability.scenarios.truth import compare_with_truth, standin_truth
from tests.support.merchants import onboard
from tests.support.pipeline import drain, ingest_many, query, worker_settings
from tests.support.reliability_report import ScenarioResult

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
