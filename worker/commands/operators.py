"""``python -m worker operator add|remove|list EMAIL``: who may see the dashboard's operator
view (every practice's health, ``/operator``). Operators are signed-in users listed in
``app.operators``; they need no practice membership and get no practice data from it."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands.common import CommandError, add_json_flag, emit
from worker.ops.db import fetch_all, operator_session, scalar


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "operator",
        help="add, remove and list the users who see the dashboard's operator view",
        description="Operators see /operator on the dashboard: every practice and merchant "
        "account with its health (the facts of `status`). The user must have an account.",
    )
    sub = parser.add_subparsers(dest="operator_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="make a user an operator", description="Make an operator.")
    add.add_argument("email", metavar="EMAIL")
    add_json_flag(add)
    add.set_defaults(handler=operator_add)
    remove = sub.add_parser(
        "remove", help="a user is no longer an operator", description="Remove an operator."
    )
    remove.add_argument("email", metavar="EMAIL")
    add_json_flag(remove)
    remove.set_defaults(handler=operator_remove)
    lister = sub.add_parser("list", help="list the operators", description="List operators.")
    add_json_flag(lister)
    lister.set_defaults(handler=operator_list)


def operator_add(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        outcome = scalar(conn, "select private.add_operator(%s)", (args.email,))
    emit(args, {"email": args.email, "operator": outcome})
    return 0


def operator_remove(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        removed = scalar(conn, "select private.remove_operator(%s)", (args.email,))
    if not removed:
        raise CommandError(f"{args.email} is not an operator")
    emit(args, {"email": args.email, "removed": True})
    return 0


def operator_list(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(conn, "select * from private.operator_list()")
    emit(args, rows, ["email", "added_at", "user_id"])
    return 0
