"""Reliability scenario 3: the MX stand-in fails 30 % of calls; every event ends processed or
dead-lettered with a reason, and the dead letters replay cleanly. The short size runs in
make test; the long one (1,000 events, two consumers, marked chaos) in make chaos.
docs/reliability.md."""

from __future__ import annotations

from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.mx_faults import run_mx_faults
from tests.support.reliability_report import record

STANDIN_SEED = 33


@pytest.mark.usefixtures("reliability_report")
@pytest.mark.parametrize(
    "size",
    [
        pytest.param({"events": 150, "max_attempts": 2}, id="short"),
        pytest.param(
            {"events": 1000, "max_attempts": 3, "workers": 2, "drain_timeout": 600},
            id="long",
            marks=pytest.mark.chaos,
        ),
    ],
)
async def test_mx_failing_30_percent_ends_processed_or_dead_and_replays(
    db_url: str, standin: StandinHandle, size: dict[str, Any]
) -> None:
    result, facts = await run_mx_faults(db_url, standin, **size)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["dead"] > 0, "no event was dead-lettered: the replay was not exercised"
    assert result.lost == 0
    assert result.double_applied == 0
