"""Scenario 3b: replaying a few dead letters while the dead-letter queue holds more than 500
others (the batch size of private.replay_events' DLQ scan)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.chaos import ROOT, ingest_many, query, scalar
from tests.conftest import create_merchant
from tests.reliability_report import ScenarioResult, record

pytestmark = pytest.mark.chaos

OTHERS = 520  # dead letters that stay dead: more than one DLQ read batch (500)


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
    ok = done.returncode == 0 and status == "queued" and left == OTHERS
    record(
        ScenarioResult(
            scenario="3b replay, DLQ > 500",
            load=f"{OTHERS + 1} dead letters, replay 1",
            faults="large dead-letter queue",
            bad_inputs=0,
            lost=0,  # the event stays dead: not lost, but not replayable
            double_applied=0,
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
