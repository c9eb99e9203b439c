"""Short reliability scenario 2 (make test): restart a private Postgres cluster during a
webhook burst, webhook and worker running as subprocesses. Long version:
tests/chaos/test_pg_restart.py; docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import run_pg_restart
from tests.mxstandin.server import StandinHandle, start_standin
from tests.reliability_report import record, reliability_report  # noqa: F401


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=32)
    yield handle
    handle.stop()


@pytest.mark.usefixtures("reliability_report")
def test_postgres_restart_during_webhook_burst(standin: StandinHandle, tmp_path: Path) -> None:
    result, facts = run_pg_restart(standin, tmp_path, events=400, restarts=1, senders=3)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert result.lost == 0
    assert result.double_applied == 0
