"""Scenario 4, long: four worker processes on one queue against one, MX answering in 50 ms."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import run_scaling
from tests.mxstandin.server import StandinHandle
from tests.reliability_report import record

pytestmark = pytest.mark.chaos


def test_four_workers_apply_once_and_scale(
    db_url: str, standin: StandinHandle, tmp_path: Path
) -> None:
    result, facts = run_scaling(
        db_url, standin, tmp_path, events_one=600, events_four=2400, latency_ms=50, timeout=600
    )
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert result.lost == 0
    assert result.double_applied == 0
    assert facts["ratio"] > 1.5, result.details
