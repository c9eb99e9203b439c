"""Reliability scenario 5: hypothesis and schemathesis against the live webhook; never a 5xx,
never a stored row without a clear status. The short size runs in make test; the long one
(2,000 + 400 per operation, marked chaos) in make chaos. docs/reliability.md."""

from __future__ import annotations

import pytest

from tests.reliability.scenarios.fuzz import run_fuzz
from tests.support.reliability_report import record


@pytest.mark.usefixtures("reliability_report")
@pytest.mark.parametrize(
    ("hypothesis_examples", "schemathesis_examples"),
    [
        pytest.param(250, 60, id="short"),
        pytest.param(2000, 400, id="long", marks=pytest.mark.chaos),
    ],
)
def test_fuzzed_webhook_never_500s_and_stores_only_clear_rows(
    db_url: str, hypothesis_examples: int, schemathesis_examples: int
) -> None:
    result, facts = run_fuzz(
        db_url,
        hypothesis_examples=hypothesis_examples,
        schemathesis_examples=schemathesis_examples,
    )
    record(result)
    assert facts["problems"] == [], facts["problems"]
    assert facts["tally"].server_errors == []
