"""Reliability scenario 1: kill -9 the worker during a burst of events. The short size runs
in make test; the long one (10,000 events, marked chaos) in make chaos. docs/reliability.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.kill9 import run_kill9
from tests.support.reliability_report import record

STANDIN_SEED = 31


@pytest.mark.usefixtures("reliability_report")
@pytest.mark.parametrize(
    "size",
    [
        pytest.param({"events": 1000, "max_kills": 6}, id="short"),
        pytest.param(
            {
                "events": 10_000,
                "kill_every": (2.0, 5.0),
                "max_kills": 60,
                "drain_timeout": 600,
            },
            id="long",
            marks=pytest.mark.chaos,
        ),
    ],
)
def test_kill9_during_burst_loses_nothing_and_applies_once(
    db_url: str, standin: StandinHandle, tmp_path: Path, size: dict[str, Any]
) -> None:
    result, ledger = run_kill9(db_url, standin, tmp_path, **size)
    record(result)
    assert ledger.problems == [], ledger.problems
    assert set(ledger.statuses) == {"processed"}, ledger.statuses
    assert result.details["redelivered_events"] > 0, "no kill landed while work was in flight"
    assert result.lost == 0
    assert result.double_applied == 0
