"""Reliability scenario 2: restart a private Postgres cluster during a webhook burst, webhook
and worker running as subprocesses. The short size runs in make test; the long one (3,000
webhooks, 3 restarts, marked chaos) in make chaos. docs/reliability.md."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.pg_restart import run_pg_restart
from tests.support.merchants import create_merchant
from tests.support.private_postgres import private_postgres
from tests.support.reliability_report import record
from tests.support.webhook_server import start_webhook
from webhook.app import POOL_CHECK_AFTER_IDLE_SECONDS

STANDIN_SEED = 32


@pytest.mark.usefixtures("reliability_report")
@pytest.mark.parametrize(
    "size",
    [
        pytest.param({"events": 400, "restarts": 1, "senders": 3}, id="short"),
        pytest.param(
            {
                "events": 3000,
                "restarts": 3,
                "senders": 4,
                "down_seconds": 2.0,
                "drain_timeout": 300,
            },
            id="long",
            marks=pytest.mark.chaos,
        ),
    ],
)
def test_postgres_restart_during_webhook_burst(
    standin: StandinHandle, tmp_path: Path, size: dict[str, Any]
) -> None:
    result, facts = run_pg_restart(standin, tmp_path, **size)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["kinds"].get("5xx", 0) + facts["kinds"].get("connection", 0) > 0, (
        "no request met the restarts"
    )
    assert result.lost == 0
    assert result.double_applied == 0


def test_restart_while_idle_costs_the_webhook_no_request() -> None:
    """Pooled connections idle past POOL_CHECK_AFTER_IDLE_SECONDS are checked before use, so
    the connections a restart cut while the webhook was quiet are replaced, not used: the
    first webhooks after it succeed (busy connections skip the check; see webhook/app.py)."""
    with private_postgres() as cluster:
        db_url = cluster.project_database()
        merchant = create_merchant(db_url, 1000077777)
        body = {"eventType": "PaymentSuccess", "merchantId": "1000077777"}
        with start_webhook(db_url, db_pool_min_size=2, db_pool_max_size=2) as server:
            url = f"{server.base_url}/webhooks/mx/{merchant.token}"
            for payment_id in range(1, 5):  # both pooled connections in use
                assert httpx.post(url, json=body | {"id": str(payment_id)}).status_code == 200
            cluster.restart()
            time.sleep(POOL_CHECK_AFTER_IDLE_SECONDS + 0.2)
            statuses = [
                httpx.post(url, json=body | {"id": str(payment_id)}, timeout=10).status_code
                for payment_id in range(5, 9)
            ]
        assert statuses == [200, 200, 200, 200]
        with psycopg.connect(db_url) as conn:
            row = conn.execute("select count(*) from app.webhook_events").fetchone()
        assert row == (8,)
