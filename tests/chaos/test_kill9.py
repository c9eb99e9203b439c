"""Scenario 1, long: kill -9 the worker repeatedly during a burst of 10,000 events."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import run_kill9
from tests.mxstandin.server import StandinHandle
from tests.reliability_report import record

pytestmark = pytest.mark.chaos


def test_kill9_during_10000_event_burst(
    db_url: str, standin: StandinHandle, tmp_path: Path
) -> None:
    result, ledger = run_kill9(
        db_url,
        standin,
        tmp_path,
        events=10_000,
        kill_every=(2.0, 5.0),
        max_kills=60,
        drain_timeout=600,
    )
    record(result)
    assert ledger.problems == [], ledger.problems
    assert set(ledger.statuses) == {"processed"}, ledger.statuses
    assert result.details["redelivered_events"] > 0
    assert result.lost == 0
    assert result.double_applied == 0
