"""What every operator command shares: output, progress, and (from worker.ops) errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from worker.ops.errors import CommandError

__all__ = ["CommandError", "add_json_flag", "emit", "progress"]

T = TypeVar("T")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def emit(args: argparse.Namespace, data: Any, columns: Sequence[str] | None = None) -> None:
    """Print ``data`` (a dict or a list of dicts) as JSON with --json, else as text."""
    if getattr(args, "json", False):
        print(json.dumps(data, default=str, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        print("(none)")
        return
    cols = list(columns or rows[0].keys())
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in cols))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def progress(items: Iterable[T], total: int | None, label: str) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; silent otherwise (CI, pipes)."""
    if not sys.stderr.isatty():
        yield from items
        return
    started = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "." * (30 - filled)
            sys.stderr.write(f"\r{label} [{bar}] {done}/{total} {time.monotonic() - started:.0f}s")
        else:
            sys.stderr.write(f"\r{label} {done} {time.monotonic() - started:.0f}s")
        sys.stderr.flush()
    sys.stderr.write("\n")
