"""Scenario 5, long: thousands of hostile requests (hypothesis) and the app's own OpenAPI
schema (schemathesis) against the live webhook."""

from __future__ import annotations

import pytest

from tests.chaos import run_fuzz
from tests.reliability_report import record

pytestmark = pytest.mark.chaos


def test_fuzzed_webhook_never_500s_and_stores_only_clear_rows(db_url: str) -> None:
    result, facts = run_fuzz(db_url, hypothesis_examples=2000, schemathesis_examples=400)
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["tally"].server_errors == []
