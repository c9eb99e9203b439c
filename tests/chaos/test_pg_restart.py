"""Scenario 2, long: restart the private Postgres cluster three times during a webhook burst."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import run_pg_restart
from tests.mxstandin.server import StandinHandle
from tests.reliability_report import record

pytestmark = pytest.mark.chaos


def test_postgres_restarts_during_webhook_burst(standin: StandinHandle, tmp_path: Path) -> None:
    result, facts = run_pg_restart(
        standin, tmp_path, events=3000, restarts=3, senders=4, down_seconds=2.0, drain_timeout=300
    )
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["kinds"].get("5xx", 0) + facts["kinds"].get("connection", 0) > 0, (
        "no request met the restarts"
    )
    assert result.lost == 0
    assert result.double_applied == 0
