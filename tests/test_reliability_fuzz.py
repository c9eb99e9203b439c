"""Short reliability scenario 5 (make test): hypothesis and schemathesis against the live
webhook; never a 5xx, never a stored row without a clear status. Long version:
tests/chaos/test_fuzz.py; docs/reliability.md."""

from __future__ import annotations

import pytest

from tests.chaos import run_fuzz
from tests.reliability_report import record, reliability_report  # noqa: F401


@pytest.mark.usefixtures("reliability_report")
def test_fuzzed_webhook_never_500s_and_stores_only_clear_rows(db_url: str) -> None:
    result, facts = run_fuzz(db_url, hypothesis_examples=250, schemathesis_examples=60)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["tally"].server_errors == []
