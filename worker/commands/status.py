"""``python -m worker status``: queues, recent events and the health of each merchant."""

from __future__ import annotations

import argparse
import json
from typing import Any

from worker.commands.common import add_json_flag, emit
from worker.ops.db import operator_session, scalar


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "status",
        help="queue depths, events of the last 24 h, per-merchant health",
        description="Ingest queue depth and oldest message age, dead-letter depth, events by "
        "status in "
        "the last 24 hours, and per merchant: last event received, credentials failing since, last "
        "reconciliation ('-' when none is recorded).",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        data = scalar(conn, "select private.operator_status()")
    if isinstance(data, str):
        data = json.loads(data)
    if args.json:
        emit(args, data)
        return 0
    ingest, dlq = data["ingest"], data["dead_letters"]
    print(f"ingest queue:  {ingest['depth']} messages, oldest {_age(ingest['oldest_age_seconds'])}")
    print(f"dead letters:  {dlq['depth']} messages, oldest {_age(dlq['oldest_age_seconds'])}")
    counts = data["events_last_24h"]
    summary = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    print(f"events (24 h): {summary}\n")
    merchants = [
        {
            "mx_merchant_id": m["mx_merchant_id"],
            "practice": m["practice"],
            "active": m["is_active"],
            "last_event_at": m["last_event_at"],
            "credentials_failing_since": m["credentials_failing_since"],
            "last_reconcile": _reconcile(m["last_reconcile"]),
        }
        for m in data["merchants"]
    ]
    emit(args, merchants)
    return 0


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _reconcile(run: dict[str, Any] | None) -> str | None:
    if not run:
        return None
    return f"{run.get('status') or '?'} at {run.get('at') or '?'}"
