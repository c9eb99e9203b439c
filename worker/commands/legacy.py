"""``python -m worker legacy import``: carry over what exists only in the legacy database."""

from __future__ import annotations

import argparse
import os
from collections import Counter, defaultdict
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker.commands.common import CommandError, add_json_flag, emit, progress
from worker.ops.db import fetch_all, operator_session, scalar
from worker.ops.legacy_source import LegacyData, read_legacy, read_practice_map

LEGACY_URL_ENV = "LEGACY_DATABASE_URL"
KINDS = ["merchants", "programmes", "product_categories", "memberships", "invoices"]
OUTCOMES = ["created", "updated", "unchanged", "conflict", "pending", "still_pending", "skipped"]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "legacy",
        help="import from the legacy database",
        description="Import from the legacy Supabase database the practices run today.",
    )
    sub = parser.add_subparsers(dest="legacy_command", required=True, metavar="ACTION")
    imp = sub.add_parser(
        "import",
        help="import merchant configs, product programmes and staff workflow fields",
        description="Read the legacy database (read-only) and import: merchant configs "
        "(credentials to "
        "Vault, active flag, environment), product -> programme mappings (programmes created when "
        "missing, mappings confirmed), and the workflow fields staff entered (membership review, "
        "referral, fulfilment, paused/canceled; invoice follow-up). Fills blanks only, never "
        "overwrites. "
        "Rows whose membership or invoice does not exist yet are staged and applied when it "
        "appears. "
        "Repeatable: a second run changes nothing. One transaction; --dry-run rolls it back.",
    )
    imp.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        help=f"legacy Postgres URL (default: ${LEGACY_URL_ENV}; prefer the variable, URLs hold "
        "passwords)",
    )
    imp.add_argument(
        "--dry-run", action="store_true", help="report what would change, change nothing"
    )
    imp.add_argument(
        "--practice-map",
        metavar="FILE",
        help="JSON object: legacy merchant id -> practice slug (needed for merchants not yet here)",
    )
    add_json_flag(imp)
    imp.set_defaults(handler=legacy_import)


def legacy_import(args: argparse.Namespace) -> int:
    source = args.source or os.environ.get(LEGACY_URL_ENV, "").strip()
    if not source:
        raise CommandError(f"give --from URL or set {LEGACY_URL_ENV}")
    practice_map = read_practice_map(args.practice_map) if args.practice_map else {}
    data = read_legacy(source)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    with operator_session() as conn:
        _import(conn, data, practice_map, counts)
        applied = scalar(conn, "select private.apply_pending_legacy_workflow()")
        if args.dry_run:
            conn.rollback()
    rows = [{"kind": kind, **{o: counts[kind][o] for o in OUTCOMES}} for kind in KINDS]
    if args.json:
        emit(args, {"dry_run": args.dry_run, "counts": rows, "pending_applied": applied})
    else:
        if args.dry_run:
            print("dry run: nothing was changed; this is what an import would do\n")
        emit(args, rows, ["kind", *OUTCOMES])
        print(f"\nstaged rows applied now that their membership or invoice exists: {applied}")
    return 0


def _import(
    conn: psycopg.Connection[Any],
    data: LegacyData,
    practice_map: dict[int, str],
    counts: dict[str, Counter[str]],
) -> None:
    practices: dict[int, Any] = {}

    def practice_of(merchant_id: int) -> Any:
        """Practice of a legacy merchant: the map, else the account already here."""
        if merchant_id not in practices:
            practice_id = None
            if merchant_id in practice_map:
                practice_id = scalar(
                    conn, "select private.practice_id_by_slug(%s)", (practice_map[merchant_id],)
                )
            else:
                found = fetch_all(
                    conn,
                    "select practice_id from app.merchant_accounts where mx_merchant_id = %s",
                    (merchant_id,),
                )
                practice_id = found[0]["practice_id"] if found else None
            practices[merchant_id] = practice_id
        return practices[merchant_id]

    work = progress(_steps(data), data.total, "importing")
    for kind, row in work:
        practice_id = practice_of(row.merchant_id)
        if practice_id is None:
            counts[kind]["skipped"] += 1
            continue
        if kind == "merchants":
            if not (row.consumer_key and row.consumer_secret):
                counts[kind]["skipped"] += 1
                continue
            outcome = scalar(
                conn,
                "select private.import_legacy_merchant(%s, %s, %s, %s, %s, %s)",
                (
                    practice_id,
                    row.merchant_id,
                    row.environment,
                    row.is_active,
                    row.consumer_key,
                    row.consumer_secret,
                ),
            )
        elif kind == "product_categories":
            [result] = fetch_all(
                conn,
                "select * from private.import_legacy_product_category(%s, %s, %s)",
                (practice_id, row.product_name, row.category),
            )
            outcome = result["outcome"]
            if result["programme_created"]:
                counts["programmes"]["created"] += 1
        elif kind == "memberships":
            outcome = scalar(
                conn,
                "select private.stage_legacy_membership(%s, %s, %s, %s, %s, %s, %s)",
                (
                    practice_id,
                    row.customer_name,
                    row.customer_id,
                    row.product_name,
                    row.product_category,
                    Jsonb(row.fields()),
                    row.legacy_at,
                ),
            )
        else:
            outcome = scalar(
                conn,
                "select private.stage_legacy_invoice(%s, %s, %s)",
                (practice_id, row.mx_invoice_id, Jsonb(row.fields())),
            )
        counts[kind][str(outcome)] += 1


def _steps(data: LegacyData) -> list[tuple[str, Any]]:
    """Merchants first, then programmes (memberships are matched by programme), then rows."""
    return [
        *(("merchants", r) for r in data.merchants),
        *(("product_categories", r) for r in data.product_categories),
        *(("memberships", r) for r in data.memberships),
        *(("invoices", r) for r in data.invoices),
    ]
