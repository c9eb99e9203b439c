"""The results: rows beside their ceilings, the text and markdown tables, the machine, and
docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from scripts import localdb
from scripts.bench.harness import DOC, say

# ------------------------------------------------------------------------------ results


@dataclass
class Row:
    benchmark: str
    subject: str
    ceiling: str
    ratio: float | None
    target: str
    met: bool | None

    @property
    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"{self.ratio:.2f}"

    def met_text(self, yes: str = "yes", no: str = "no") -> str:
        return "-" if self.met is None else (yes if self.met else no)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plans: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        mark = row.met_text("MET", "MISSED")
        say(f"{row.benchmark}: {row.subject} | ceiling {row.ceiling} | {row.ratio_text} | {mark}")


def table_markdown(rows: list[Row]) -> str:
    out = [
        "| benchmark | subject | ceiling | ratio | target | met |",
        "|---|---|---|---:|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.benchmark} | {r.subject} | {r.ceiling} | {r.ratio_text} | {r.target} "
            f"| {r.met_text(no='**no**')} |"
        )
    return "\n".join(out)


def table_text(rows: list[Row]) -> str:
    head = ("benchmark", "subject", "ceiling", "ratio", "target", "met")
    body = [
        (
            r.benchmark,
            r.subject,
            r.ceiling,
            r.ratio_text,
            r.target,
            r.met_text(no="NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    with psycopg.connect(localdb.server_url()) as conn:
        row = conn.execute("select version()").fetchone()
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "postgres": str(row[0]).split(" on ")[0] if row else "?",
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ------------------------------------------------------------------------------ docs


def write_doc(results: Results, info: dict[str, str], command: str) -> None:
    start_mark, end_mark = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
    plans_start, plans_end = "<!-- bench:plans:start -->", "<!-- bench:plans:end -->"
    block = [
        start_mark,
        "",
        f"Machine: {info['nproc']} cores, {info['memory']}, {info['postgres']}, "
        f"Python {info['python']} "
        f"(load average before the run: {info['load_before']}; other work shared the machine).",
        f"Date: {info['date']}. Command: `{command}`.",
        "",
        table_markdown(results.rows),
        "",
    ]
    gen = results.details.get("generation")
    if gen:
        block += ["Generation steps (seconds):", "", "```", gen["steps"].strip(), "```", ""]
    block.append(end_mark)
    text = DOC.read_text() if DOC.exists() else ""
    if start_mark in text:
        head, rest = text.split(start_mark, 1)
        tail = rest.split(end_mark, 1)[1]
        text = head + "\n".join(block) + tail
    else:
        text += "\n## Results\n\n" + "\n".join(block) + "\n"
    if results.plans:
        plan_block = [plans_start, ""]
        for name, plan in results.plans:
            plan_block += [f"### {name}", "", "```", plan.strip(), "```", ""]
        plan_block.append(plans_end)
        if plans_start in text:
            head, rest = text.split(plans_start, 1)
            tail = rest.split(plans_end, 1)[1]
            text = head + "\n".join(plan_block) + tail
        else:
            text += "\n## Plans at scale\n\n" + "\n".join(plan_block) + "\n"
    DOC.write_text(text)
