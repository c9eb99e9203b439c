"""Scenario 3, long: the MX stand-in fails 30 % of calls (500, 429 + Retry-After, hangs)."""

from __future__ import annotations

import pytest

from tests.chaos import run_mx_faults
from tests.mxstandin.server import StandinHandle
from tests.reliability_report import record

pytestmark = pytest.mark.chaos


async def test_mx_failing_30_percent_of_1000_events(db_url: str, standin: StandinHandle) -> None:
    result, facts = await run_mx_faults(
        db_url, standin, events=1000, max_attempts=3, workers=2, drain_timeout=600
    )
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["dead"] > 0
    assert result.lost == 0
    assert result.double_applied == 0
