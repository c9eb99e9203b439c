"""What every operator command shares: the database connection, output, progress, errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


class CommandError(Exception):
    """A failure to report to the operator as one clear line (exit code 2)."""


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def operator_database_url() -> str:
    """Operator commands run as the database owner (on Supabase: the postgres role)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise CommandError("DATABASE_URL is not set (the owner role's connection URL)")
    return url


def connect() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(operator_database_url(), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot connect to the database: {str(exc).strip()}") from exc


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
