"""Short reliability scenario 1 (make test): kill -9 the worker during a 1,000-event burst.
The long version is tests/chaos/test_kill9.py; docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import run_kill9
from tests.mxstandin.server import StandinHandle, start_standin
from tests.reliability_report import record, reliability_report  # noqa: F401


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=31)
    yield handle
    handle.stop()


@pytest.mark.usefixtures("reliability_report")
def test_kill9_during_burst_loses_nothing_and_applies_once(
    db_url: str, standin: StandinHandle, tmp_path: Path
) -> None:
    result, ledger = run_kill9(db_url, standin, tmp_path, events=1000, max_kills=6)
    record(result)
    assert ledger.problems == [], ledger.problems
    assert set(ledger.statuses) == {"processed"}, ledger.statuses
    assert result.details["redelivered_events"] > 0, "no kill landed while work was in flight"
    assert result.lost == 0
    assert result.double_applied == 0
