"""``python -m worker practice add|update|list``: the practices (tenants)."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands.common import CommandError, add_json_flag, emit
from worker.ops.db import fetch_all, fetch_one, operator_session

COLUMNS = ["slug", "name", "timezone", "merchant_accounts", "members", "id"]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "practice",
        help="add, update and list practices",
        description="Manage practices (the tenants). Connects as the database owner "
        "(DATABASE_URL).",
    )
    sub = parser.add_subparsers(dest="practice_command", required=True, metavar="ACTION")

    add = sub.add_parser(
        "add",
        help="create a practice",
        description="Create a practice; it starts with the default programmes and referral "
        "sources.",
    )
    add.add_argument("--name", required=True, help="display name, e.g. 'Bay Wellness'")
    add.add_argument(
        "--slug", required=True, help="unique short name: lowercase letters, digits, hyphens"
    )
    add.add_argument("--timezone", default="UTC", help="IANA time zone (default: UTC)")
    add_json_flag(add)
    add.set_defaults(handler=practice_add)

    update = sub.add_parser(
        "update",
        help="change a practice's name, time zone or slug",
        description="Change a practice; options left out keep their value.",
    )
    update.add_argument("slug", help="the practice's current slug")
    update.add_argument("--name", help="new display name")
    update.add_argument("--timezone", help="new IANA time zone")
    update.add_argument("--new-slug", help="new slug")
    add_json_flag(update)
    update.set_defaults(handler=practice_update)

    lister = sub.add_parser("list", help="list practices", description="List every practice.")
    add_json_flag(lister)
    lister.set_defaults(handler=practice_list)


def _show(conn: Any, args: argparse.Namespace, practice_id: Any) -> None:
    row = fetch_one(
        conn, "select * from private.operator_practices() where id = %s", (practice_id,)
    )
    emit(args, row, COLUMNS)


def practice_add(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        if fetch_all(conn, "select 1 from app.practices where slug = %s", (args.slug,)):
            raise CommandError(f"a practice with slug {args.slug!r} exists (use `practice update`)")
        practice_id = fetch_one(
            conn,
            "select private.create_practice(%s, %s, %s) as id",
            (args.name, args.slug, args.timezone),
        )["id"]
        _show(conn, args, practice_id)
    return 0


def practice_update(args: argparse.Namespace) -> int:
    if args.name is None and args.timezone is None and args.new_slug is None:
        raise CommandError("nothing to change: give --name, --timezone or --new-slug")
    with operator_session() as conn:
        practice_id = fetch_one(
            conn,
            "select private.update_practice(%s, %s, %s, %s) as id",
            (args.slug, args.name, args.timezone, args.new_slug),
        )["id"]
        _show(conn, args, practice_id)
    return 0


def practice_list(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(conn, "select * from private.operator_practices()")
    emit(args, rows, COLUMNS)
    return 0
