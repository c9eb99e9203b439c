"""Short reliability scenario 3 (make test): the MX stand-in fails 30 % of calls; every event
ends processed or dead-lettered with a reason, and the dead letters replay cleanly. Long
version: tests/chaos/test_mx_faults.py; docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos import run_mx_faults
from tests.mxstandin.server import StandinHandle, start_standin
from tests.reliability_report import record, reliability_report  # noqa: F401


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=33)
    yield handle
    handle.stop()


@pytest.mark.usefixtures("reliability_report")
async def test_mx_failing_30_percent_ends_processed_or_dead_and_replays(
    db_url: str, standin: StandinHandle
) -> None:
    result, facts = await run_mx_faults(db_url, standin, events=150, max_attempts=2)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["dead"] > 0, "no event was dead-lettered: the replay was not exercised"
    assert result.lost == 0
    assert result.double_applied == 0
