"""``python -m worker deadletters list|show|replay``: events the worker gave up on."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from worker.commands.common import CommandError, add_json_flag, emit, progress
from worker.ops.db import fetch_all, operator_session, scalar

LIST_COLUMNS = [
    "event_id",
    "dead_at",
    "mx_merchant_id",
    "event_type",
    "payment_id",
    "attempts",
    "reason",
]
BATCH = 100


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not an ISO time: {value!r} (e.g. 2026-11-29T08:00+00:00)"
        ) from exc
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"give a time zone offset: {value!r} (e.g. 2026-11-29T08:00Z)"
        )
    return parsed


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "deadletters",
        help="list, inspect and replay dead-lettered events",
        description="Events the worker gave up on (status dead, a message in mx_ingest_dlq).",
    )
    sub = parser.add_subparsers(dest="deadletters_command", required=True, metavar="ACTION")

    lister = sub.add_parser(
        "list", help="list dead events, newest first", description="List dead events."
    )
    lister.add_argument("--merchant", type=int, metavar="N", help="only this MX merchant id")
    lister.add_argument(
        "--since", type=_time, metavar="TIME", help="dead at or after TIME (ISO, with offset)"
    )
    lister.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json_flag(lister)
    lister.set_defaults(handler=deadletters_list)

    show = sub.add_parser(
        "show",
        help="show one event: reason, attempts, payload (card data masked), replays",
        description="Show one event with its reason, attempts, payload (card data masked) and "
        "replay history.",
    )
    show.add_argument("event_id", type=int, metavar="EVENT_ID")
    add_json_flag(show)
    show.set_defaults(handler=deadletters_show)

    replay = sub.add_parser(
        "replay",
        help="queue dead events again",
        description="Replay one dead event, or every one dead since a time: in one transaction per "
        "batch the event is reset (status queued, attempts 0; its last error is kept in the replay "
        "history), a new message goes to mx_ingest and its dead letter leaves mx_ingest_dlq. "
        "Applying "
        "is idempotent, so a replay never applies anything twice.",
    )
    replay.add_argument(
        "event_id", type=int, nargs="?", metavar="EVENT_ID", help="the event to replay"
    )
    replay.add_argument(
        "--all-since", type=_time, metavar="TIME", help="every event dead since TIME"
    )
    replay.add_argument(
        "--merchant", type=int, metavar="N", help="with --all-since: only this MX merchant id"
    )
    replay.add_argument(
        "--reason-contains", metavar="TEXT", help="with --all-since: reason contains TEXT"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed, change nothing"
    )
    add_json_flag(replay)
    replay.set_defaults(handler=deadletters_replay)


def deadletters_list(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(
            conn,
            "select * from private.dead_letters(%s, %s, %s)",
            (args.merchant, args.since, args.limit),
        )
    emit(args, rows, LIST_COLUMNS)
    return 0


def deadletters_show(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(
            conn,
            "select e.id as event_id, e.status, e.received_at, e.processed_at, e.mx_merchant_id, "
            "e.event_type, e.payment_id, e.origin, e.attempts, e.last_error as reason, "
            "e.payload_masked as payload from app.webhook_events as e where e.id = %s",
            (args.event_id,),
        )
        if not rows:
            raise CommandError(f"no event {args.event_id}")
        replays = fetch_all(
            conn,
            "select replayed_at, replayed_by, previous_status, previous_attempts, previous_error "
            "from app.event_replays where event_id = %s order by replayed_at",
            (args.event_id,),
        )
    event = rows[0] | {"replays": replays}
    if args.json:
        emit(args, event)
        return 0
    for key, value in event.items():
        if key not in ("payload", "replays"):
            print(f"{key:>14}: {'-' if value is None else value}")
    print("\npayload (card data masked):")
    emit(args, [{"field": k, "value": v} for k, v in (event["payload"] or {}).items()])
    print("\nreplays:")
    emit(args, replays)
    return 0


def deadletters_replay(args: argparse.Namespace) -> int:
    if (args.event_id is None) == (args.all_since is None):
        raise CommandError("give either EVENT_ID or --all-since TIME")
    if args.event_id is not None and (args.merchant or args.reason_contains):
        raise CommandError("--merchant and --reason-contains go with --all-since")
    with operator_session() as conn:
        if args.event_id is not None:
            ids = [args.event_id]
        else:
            ids = list(
                scalar(
                    conn,
                    "select private.dead_letter_ids_since(%s, %s, %s)",
                    (args.all_since, args.merchant, args.reason_contains),
                )
            )
        if args.dry_run:
            rows = fetch_all(
                conn,
                "select e.id as event_id, e.status, e.mx_merchant_id, e.event_type, e.payment_id, "
                "e.attempts, e.last_error as reason from app.webhook_events as e "
                "where e.id = any(%s) order by e.id",
                (ids,),
            )
            conn.rollback()
            emit(
                args, {"dry_run": True, "would_replay": [r for r in rows if r["status"] == "dead"]}
            )
            return 0
    results: list[dict[str, Any]] = []
    batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    for batch in progress(batches, len(batches), "replaying"):
        with operator_session() as conn:  # one transaction per batch
            results += fetch_all(
                conn,
                "select * from private.replay_events(%s, %s) order by event_id",
                (batch, "operator"),
            )
    replayed = [r for r in results if r["outcome"] == "replayed"]
    emit(args, results, ["event_id", "outcome", "previous_status", "msg_id"])
    if args.event_id is not None and not replayed:
        outcome = results[0] if results else {"outcome": "not_found", "previous_status": None}
        detail = f" (status {outcome['previous_status']})" if outcome.get("previous_status") else ""
        raise CommandError(f"event {args.event_id} not replayed: {outcome['outcome']}{detail}")
    return 0
