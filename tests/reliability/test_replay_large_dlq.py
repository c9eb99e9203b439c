"""Scenario 3b: replaying a few dead letters while the dead-letter queue holds more than 500
others (the batch size of private.replay_events' DLQ scan)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.reliability.scenarios.traffic import ROOT, scalar
from tests.support.merchants import create_merchant
from tests.support.pipeline import ingest_many, query
from tests.support.reliability_report import ScenarioResult, record

pytestmark = [pytest.mark.chaos, pytest.mark.usefixtures("reliability_report")]

OTHERS = 520  # dead letters that stay dead: more than one DLQ read batch (500)

# An event is accounted for when it is queued with its message in mx_ingest (the replayed
# one) or dead with its dead letter in mx_ingest_dlq (the others); any other event is lost.
UNACCOUNTED_SQL = """
select count(*) from app.webhook_events as e
where not (
    (e.status = 'queued' and exists (select from pgmq.q_mx_ingest as q where q.msg_id = e.msg_id))
    or (e.status = 'dead' and exists (
        select from pgmq.q_mx_ingest_dlq as d where (d.message ->> 'event_id')::bigint = e.id
    ))
)
"""


def test_replay_one_event_with_a_large_dead_letter_queue(db_url: str) -> None:
    started = time.monotonic()
    merchant = create_merchant(db_url, 1000036006)
    payloads = [
        {"eventType": "PaymentFail", "merchantId": str(merchant.mx_merchant_id), "id": str(i)}
        for i in range(1, OTHERS + 2)
    ]
    ingest_many(db_url, merchant.token, payloads)
    # dead-letter every event through the worker's own procedures
    query(
        db_url,
        "select private.dead_letter_ingest_event(c.msg_id, c.event_id, 'MX NotFound', false) "
        "from private.claim_ingest_events(%s, 30) as c",
        (OTHERS + 1,),
    )
    assert scalar(db_url, "select count(*) from pgmq.q_mx_ingest_dlq") == OTHERS + 1
    target = scalar(db_url, "select min(id) from app.webhook_events")

    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        # the server cancels the replay if it loops, so nothing keeps running after the test
        "PGOPTIONS": "-c statement_timeout=30000",
    }
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "worker", "deadletters", "replay", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    replay_seconds = time.monotonic() - t0
    status = scalar(db_url, "select status from app.webhook_events where id = %s", (target,))
    left = scalar(db_url, "select count(*) from pgmq.q_mx_ingest_dlq")
    lost = scalar(db_url, UNACCOUNTED_SQL)
    ok = done.returncode == 0 and status == "queued" and left == OTHERS and lost == 0
    record(
        ScenarioResult(
            scenario="3b replay, DLQ > 500",
            load=f"{OTHERS + 1} dead letters, replay 1",
            faults="large dead-letter queue",
            bad_inputs=0,
            # the replayed event is queued again, the others stay dead with their dead letters
            lost=lost,
            double_applied=None,  # no worker runs: nothing is applied, so nothing twice
            seconds=time.monotonic() - started,
            passed=ok,
            details={
                "replay_s": round(replay_seconds, 1),
                "exit": done.returncode,
                "stderr": done.stderr.strip()[-200:],
            },
        )
    )
    assert done.returncode == 0, done.stderr
    assert status == "queued"
    assert left == OTHERS
    assert lost == 0, f"{lost} events neither queued with a message nor dead with a dead letter"
