"""Reliability scenario 4: four worker processes on one queue apply each event once and are
faster than one. The short size runs in make test; the long one (600 + 2,400 events, marked
chaos) in make chaos. docs/reliability.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.reliability.scenarios.scaling import run_scaling
from tests.support.reliability_report import record

STANDIN_SEED = 34


@pytest.mark.usefixtures("reliability_report")
@pytest.mark.parametrize(
    "size",
    [
        pytest.param({"events_one": 150, "events_four": 500}, id="short"),
        pytest.param(
            {"events_one": 600, "events_four": 2400, "latency_ms": 50, "timeout": 600},
            id="long",
            marks=pytest.mark.chaos,
        ),
    ],
)
def test_four_workers_apply_once_and_scale(
    db_url: str, standin: StandinHandle, tmp_path: Path, size: dict[str, Any]
) -> None:
    result, facts = run_scaling(db_url, standin, tmp_path, **size)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert result.lost == 0
    assert result.double_applied == 0
    assert facts["ratio"] > 1.5, result.details
