"""``python -m worker merchant ...``: MX Merchant accounts, their credentials and callback URLs."""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from worker.commands.common import CommandError, add_json_flag, emit
from worker.ops.db import fetch_all, fetch_one, operator_session, scalar
from worker.ops.secrets_input import (
    callback_url,
    new_token,
    public_url_configured,
    read_credentials,
)

COLUMNS = [
    "mx_merchant_id",
    "practice_slug",
    "name",
    "environment",
    "is_active",
    "has_credentials",
    "active_tokens",
    "credentials_failed_at",
    "credentials_error",
]
CREDENTIALS_HELP = (
    "Credentials come from MX_CONSUMER_KEY and MX_CONSUMER_SECRET, else they are prompted for; "
    "they are never accepted as arguments (shell history, ps) and are stored in Vault."
)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "merchant",
        help="add, update, enable/disable and list MX merchant accounts; rotate callback tokens",
        description="Manage MX Merchant accounts. Connects as the database owner (DATABASE_URL).",
    )
    sub = parser.add_subparsers(dest="merchant_command", required=True, metavar="ACTION")

    add = sub.add_parser(
        "add",
        help="add an account and print its callback URL (once)",
        description="Add an MX merchant account to a practice and print its webhook callback URL "
        "<WEBHOOK_PUBLIC_URL>/webhooks/mx/<token>. The token is shown only this once (only its "
        "hash "
        "is stored). " + CREDENTIALS_HELP,
    )
    add.add_argument("--practice", required=True, metavar="SLUG", help="the practice's slug")
    add.add_argument(
        "--mx-merchant-id", required=True, type=int, metavar="N", help="MX merchant id"
    )
    add.add_argument("--environment", required=True, choices=["sandbox", "production"])
    add.add_argument("--name", required=True, metavar="DBA", help="the account's DBA name")
    add_json_flag(add)
    add.set_defaults(handler=merchant_add)

    update = sub.add_parser(
        "update",
        help="change an account's name, environment, practice or credentials",
        description="Change an account; options left out keep their value. With --credentials the "
        "API key pair is replaced. " + CREDENTIALS_HELP,
    )
    _merchant_id(update)
    update.add_argument("--name", metavar="DBA")
    update.add_argument("--environment", choices=["sandbox", "production"])
    update.add_argument("--practice", metavar="SLUG", help="move the account to another practice")
    update.add_argument("--credentials", action="store_true", help="replace the API key pair")
    add_json_flag(update)
    update.set_defaults(handler=merchant_update)

    for action, active, text in (
        ("disable", False, "refuse the account's webhooks and stop using it"),
        ("enable", True, "accept the account's webhooks again"),
    ):
        toggle = sub.add_parser(action, help=text, description=f"{action.capitalize()}: {text}.")
        _merchant_id(toggle)
        add_json_flag(toggle)
        toggle.set_defaults(handler=merchant_set_active, active=active)

    lister = sub.add_parser(
        "list",
        help="list accounts (never secrets)",
        description="List merchant accounts; secrets never shown.",
    )
    lister.add_argument("--practice", metavar="SLUG", help="only this practice's accounts")
    add_json_flag(lister)
    lister.set_defaults(handler=merchant_list)

    rotate = sub.add_parser(
        "rotate-token",
        help="add a new callback token and print its URL (old ones stay valid)",
        description="Start a token rotation: a new callback URL is printed once; every older token "
        "stays valid until `merchant retire-tokens --keep-newest`.",
    )
    _merchant_id(rotate)
    add_json_flag(rotate)
    rotate.set_defaults(handler=merchant_rotate_token)

    retire = sub.add_parser(
        "retire-tokens",
        help="end a rotation: retire every token but the newest",
        description="Retire every valid callback token of the account except the newest. Run it "
        "once "
        "MX Merchant calls the new URL (subscriptions subscribe with the new URL first).",
    )
    _merchant_id(retire)
    retire.add_argument(
        "--keep-newest", action="store_true", required=True, help="keep the newest token (required)"
    )
    add_json_flag(retire)
    retire.set_defaults(handler=merchant_retire_tokens)


def _merchant_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mx-merchant-id", required=True, type=int, metavar="N", help="MX merchant id"
    )


def _account(conn: psycopg.Connection[Any], mx_merchant_id: int) -> dict[str, Any]:
    rows = fetch_all(
        conn,
        "select * from private.operator_merchant_accounts() where mx_merchant_id = %s",
        (mx_merchant_id,),
    )
    if not rows:
        raise CommandError(f"no merchant account with MX merchant id {mx_merchant_id}")
    return rows[0]


def merchant_add(args: argparse.Namespace) -> int:
    public_url_configured()
    with operator_session() as conn:
        if fetch_all(
            conn,
            "select 1 from app.merchant_accounts where mx_merchant_id = %s",
            (args.mx_merchant_id,),
        ):
            raise CommandError(
                f"merchant {args.mx_merchant_id} exists (use `merchant update` or `merchant "
                "rotate-token`)"
            )
        practice_id = scalar(conn, "select private.practice_id_by_slug(%s)", (args.practice,))
        key, secret = read_credentials()
        account_id = scalar(
            conn,
            "select private.upsert_merchant_account(%s, %s, %s, %s, %s, %s)",
            (practice_id, args.mx_merchant_id, args.name, args.environment, key, secret),
        )
        token = new_token()
        conn.execute("select private.add_webhook_token(%s, %s)", (account_id, token))
        row = _account(conn, args.mx_merchant_id)
    row["callback_url"] = callback_url(token)
    emit(args, row, [*COLUMNS[:6], "callback_url"])
    if not args.json:
        print("\nGive this callback URL to `subscriptions subscribe`; it is not shown again.")
    return 0


def merchant_update(args: argparse.Namespace) -> int:
    if not (args.name or args.environment or args.practice or args.credentials):
        raise CommandError(
            "nothing to change: give --name, --environment, --practice or --credentials"
        )
    with operator_session() as conn:
        before = _account(conn, args.mx_merchant_id)
        practice_id = (
            scalar(conn, "select private.practice_id_by_slug(%s)", (args.practice,))
            if args.practice
            else None
        )
        conn.execute(
            "select private.update_merchant_account(%s, %s, %s, %s)",
            (args.mx_merchant_id, args.name, args.environment, practice_id),
        )
        if args.credentials:
            key, secret = read_credentials()
            account = fetch_one(
                conn,
                "select practice_id, name, environment from app.merchant_accounts where "
                "mx_merchant_id = %s",
                (args.mx_merchant_id,),
            )
            conn.execute(
                "select private.upsert_merchant_account(%s, %s, %s, %s, %s, %s)",
                (
                    account["practice_id"],
                    args.mx_merchant_id,
                    account["name"],
                    account["environment"],
                    key,
                    secret,
                ),
            )
            # upsert re-enables an account; keep a disabled one disabled
            conn.execute(
                "select private.set_merchant_active(%s, %s)",
                (args.mx_merchant_id, before["is_active"]),
            )
        row = _account(conn, args.mx_merchant_id)
    emit(args, row, COLUMNS)
    return 0


def merchant_set_active(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        changed = scalar(
            conn, "select private.set_merchant_active(%s, %s)", (args.mx_merchant_id, args.active)
        )
        row = _account(conn, args.mx_merchant_id)
    row["changed"] = bool(changed)
    emit(args, row, ["mx_merchant_id", "practice_slug", "name", "is_active", "changed"])
    return 0


def merchant_list(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(conn, "select * from private.operator_merchant_accounts()")
    if args.practice:
        rows = [r for r in rows if r["practice_slug"] == args.practice]
    emit(args, rows, COLUMNS)
    return 0


def merchant_rotate_token(args: argparse.Namespace) -> int:
    public_url_configured()
    token = new_token()
    with operator_session() as conn:
        account_id = scalar(conn, "select private.merchant_account_id(%s)", (args.mx_merchant_id,))
        conn.execute("select private.add_webhook_token(%s, %s)", (account_id, token))
        row = _account(conn, args.mx_merchant_id)
    out = {
        "mx_merchant_id": args.mx_merchant_id,
        "active_tokens": row["active_tokens"],
        "callback_url": callback_url(token),
    }
    emit(args, out)
    if not args.json:
        print(
            "\nBoth URLs are valid now. Subscribe the new URL, then run "
            f"`merchant retire-tokens --mx-merchant-id {args.mx_merchant_id} --keep-newest`."
        )
    return 0


def merchant_retire_tokens(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        retired = scalar(
            conn, "select private.retire_older_webhook_tokens(%s)", (args.mx_merchant_id,)
        )
        row = _account(conn, args.mx_merchant_id)
    emit(
        args,
        {
            "mx_merchant_id": args.mx_merchant_id,
            "retired": retired,
            "active_tokens": row["active_tokens"],
        },
    )
    return 0
