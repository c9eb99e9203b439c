"""Fixtures of the long reliability suite (``make chaos``): the report and a stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mxstandin.server import StandinHandle, start_standin
from tests.reliability_report import reliability_report

__all__ = ["reliability_report"]


@pytest.fixture(autouse=True)
def _report(reliability_report: None) -> None:
    """Every chaos test takes part in the end-of-run report."""


@pytest.fixture
def standin() -> Iterator[StandinHandle]:
    handle = start_standin(seed=41)
    yield handle
    handle.stop()
