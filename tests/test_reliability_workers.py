"""Short reliability scenario 4 (make test): four worker processes on one queue apply each
event once and are faster than one. Long version: tests/chaos/test_workers.py;
docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import run_scaling
from tests.mxstandin.server import StandinHandle, start_standin
from tests.reliability_report import record, reliability_report  # noqa: F401


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=34)
    yield handle
    handle.stop()


@pytest.mark.usefixtures("reliability_report")
def test_four_workers_apply_once_and_scale(
    db_url: str, standin: StandinHandle, tmp_path: Path
) -> None:
    result, facts = run_scaling(db_url, standin, tmp_path, events_one=150, events_four=500)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert result.lost == 0
    assert result.double_applied == 0
    assert facts["ratio"] > 1.5, result.details
