"""Short reliability scenario 2 (make test): restart a private Postgres cluster during a
webhook burst, webhook and worker running as subprocesses. Long version:
tests/chaos/test_pg_restart.py; docs/reliability.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.chaos import run_pg_restart
from tests.conftest import create_merchant
from tests.mxstandin.server import StandinHandle, start_standin
from tests.private_postgres import private_postgres
from tests.reliability_report import record, reliability_report  # noqa: F401
from tests.webhook_server import start_webhook
from webhook.app import POOL_CHECK_AFTER_IDLE_SECONDS


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=32)
    yield handle
    handle.stop()


@pytest.mark.usefixtures("reliability_report")
def test_postgres_restart_during_webhook_burst(standin: StandinHandle, tmp_path: Path) -> None:
    result, facts = run_pg_restart(standin, tmp_path, events=400, restarts=1, senders=3)
    record(result)
    assert facts["problems"] == [], facts["problems"]
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
