"""The end-of-run reliability report: every scenario records one line, pytest prints a table.

A scenario calls ``record(...)`` once it has its numbers (whether its assertions then pass or
not: a failing run is reported too, with ``passed=False`` set by the caller). The lines go to
``.run/reliability-report.json`` (one section per suite: ``short`` for ``make test``,
``chaos`` for ``make chaos``; a scenario's line is replaced by its latest run) and, through the
``reliability_report`` session fixture, into a table printed at the end of the pytest run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT_PATH = ROOT / ".run" / "reliability-report.json"


@dataclass
class ScenarioResult:
    """One report line. ``lost`` and ``double_applied`` must be 0; ``None`` means the
    scenario does not measure that figure (the table prints "n/a")."""

    scenario: str
    load: str  # what load was held, e.g. "10000 events, 4 kill -9"
    faults: str  # which faults were injected, how many
    bad_inputs: int  # hostile or invalid inputs tried (fuzzing), else 0
    lost: int | None  # accepted events that did not end processed or dead-lettered
    double_applied: int | None  # rows that exist twice, or events applied twice
    seconds: float
    passed: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )


_results: list[ScenarioResult] = []
_suite: str = "short"
_started: float = time.time()


def record(result: ScenarioResult) -> ScenarioResult:
    """Add a result to this run's report and rewrite the report file."""
    _results[:] = [r for r in _results if r.scenario != result.scenario]
    _results.append(result)
    _write()
    return result


def _write() -> None:
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        report = json.loads(REPORT_PATH.read_text())
    # latest result per scenario: this run's, else what an earlier run of the suite recorded
    earlier = {
        s["scenario"]: s
        for s in report.get(_suite, {}).get("scenarios", [])
        if isinstance(s, dict) and "scenario" in s
    }
    earlier.update({r.scenario: asdict(r) for r in _results})
    report[_suite] = {
        "last_run_started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_started)),
        "scenarios": sorted(earlier.values(), key=lambda s: s["scenario"]),
    }
    # atomic replace: another pytest run may read or write the file at the same time
    fd, tmp = tempfile.mkstemp(dir=REPORT_PATH.parent, prefix=".reliability-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(report, out, indent=2, default=str)
    os.replace(tmp, REPORT_PATH)


def _figure(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def format_table(rows: list[ScenarioResult]) -> str:
    headers = [
        "scenario",
        "load held",
        "faults injected",
        "bad inputs",
        "lost",
        "double",
        "s",
        "ok",
    ]
    lines = [
        [
            r.scenario,
            r.load,
            r.faults,
            str(r.bad_inputs),
            _figure(r.lost),
            _figure(r.double_applied),
            f"{r.seconds:.1f}",
            "yes" if r.passed and r.lost in (0, None) and r.double_applied in (0, None) else "NO",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


class _SummaryPlugin:
    """Prints the table in pytest's terminal summary (registered by the fixture below)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not _results:
            return
        terminalreporter.section(f"reliability report ({_suite})")
        for line in format_table(_results).splitlines():
            terminalreporter.write_line(line)
        for r in _results:
            if r.details:
                detail = ", ".join(f"{k}={v}" for k, v in r.details.items())
                terminalreporter.write_line(f"  {r.scenario}: {detail}")
        terminalreporter.write_line(f"written to {REPORT_PATH.relative_to(ROOT)}")


@pytest.fixture(scope="session")
def reliability_report(request: pytest.FixtureRequest) -> None:
    """Session fixture: picks the suite name and prints the table at the end of the run."""
    global _suite
    markexpr = request.config.getoption("markexpr", "") or ""
    _suite = "chaos" if "chaos" in markexpr and "not chaos" not in markexpr else "short"
    manager = request.config.pluginmanager
    if not manager.has_plugin("reliability-summary"):
        manager.register(_SummaryPlugin(), "reliability-summary")
