"""``python -m worker member add|list|remove``: a practice's staff.

The account comes from Supabase Auth when ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY``
are set: the Auth admin API invites the e-mail (only the platform can send that invitation,
so this is supabase-py's one job here). Without them (a local database), the same operation
goes through the local platform layer: the user is created in its ``auth.users``. Either
way the role in the practice is given by ``private.set_practice_member``, which gives it only
to an account whose address is confirmed or that was invited (an unconfirmed account someone
registered with the address first gets nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import psycopg

from worker.commands.common import CommandError, add_json_flag, emit
from worker.ops.db import describe, fetch_all, operator_database_url, operator_session, scalar
from worker.ops.invitations import (
    SERVICE_KEY_ENV,
    SUPABASE_URL_ENV,
    confirm_url,
    invite_user,
    process_pending,
)

INVITE_SECONDS = 7 * 86400  # a local invitation link works for a week, once


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "member",
        help="add, list and remove a practice's staff",
        description="A practice's staff (Supabase Auth users) and their role. With "
        f"{SUPABASE_URL_ENV} and {SERVICE_KEY_ENV} set, new users are invited by e-mail "
        "through the Supabase Auth admin API; without them (local), they are created in the "
        "local platform layer's auth.users.",
    )
    sub = parser.add_subparsers(dest="member_command", required=True, metavar="ACTION")

    add = sub.add_parser(
        "add",
        help="invite (or find) a user and give them a role in a practice",
        description="Give the user with this e-mail a role in the practice, inviting them "
        "first when they have no account. Running it again changes only the role.",
    )
    add.add_argument("--practice", required=True, metavar="SLUG", help="the practice's slug")
    add.add_argument("--email", required=True, help="the staff member's e-mail")
    add.add_argument("--role", required=True, choices=["owner", "admin", "staff", "viewer"])
    add_json_flag(add)
    add.set_defaults(handler=member_add)

    lister = sub.add_parser("list", help="list a practice's staff", description="List staff.")
    lister.add_argument("--practice", required=True, metavar="SLUG", help="the practice's slug")
    add_json_flag(lister)
    lister.set_defaults(handler=member_list)

    remove = sub.add_parser(
        "remove",
        help="take a user out of a practice",
        description="Take the user out of the practice; their account stays.",
    )
    remove.add_argument("--practice", required=True, metavar="SLUG", help="the practice's slug")
    remove.add_argument("--email", required=True, help="the staff member's e-mail")
    add_json_flag(remove)
    remove.set_defaults(handler=member_remove)

    invitations = sub.add_parser(
        "invitations",
        help="send the invitations owners asked for on the dashboard's Team page",
        description="Send every pending invitation from the dashboard's Team page (the same "
        "path as member add) and give its role; the worker's scheduler does this on every "
        "tick, this runs it now.",
    )
    add_json_flag(invitations)
    invitations.set_defaults(handler=member_invitations)


def _user_id(conn: psycopg.Connection[Any], email: str) -> tuple[Any, str]:
    """The user's id, and how it was found: existing, invited (Supabase) or created (local)."""
    existing = scalar(
        conn, "select id from auth.users where lower(email) = lower(%s) limit 1", (email,)
    )
    if existing is not None:
        return existing, "existing"
    return invite_user(conn, email)


def _local_invite_link(conn: psycopg.Connection[Any], user_id: Any) -> str | None:
    """Locally no mail is sent: the operator passes on a one-time link to the dashboard page
    where the new user chooses a password (the local platform layer's invitation)."""
    confirm = confirm_url()
    if confirm is None:
        return None
    token = scalar(
        conn,
        "select auth.local_new_one_time_token(%s, 'invite', %s)",
        (user_id, INVITE_SECONDS),
    )
    return f"{confirm}?token={token}&type=invite"


def member_add(args: argparse.Namespace) -> int:
    email = args.email.strip()
    with operator_session() as conn:
        user_id, how = _user_id(conn, email)
        try:
            outcome = scalar(
                conn,
                "select private.set_practice_member(%s, %s, %s)",
                (args.practice, user_id, args.role),
            )
        except psycopg.errors.InsufficientPrivilege:
            # somebody registered this address and never confirmed it: not necessarily its owner
            raise CommandError(
                f"the account of {email} has not confirmed its e-mail address and was not "
                "invited, so it gets no role: whoever registered it may not own the address. "
                "Ask the person to confirm it (or delete that account in Supabase Auth and run "
                "member add again, which invites the address)."
            ) from None
        link = _local_invite_link(conn, user_id) if how == "created locally" else None
    result = {
        "practice": args.practice,
        "email": email,
        "role": args.role,
        "user": how,
        "membership": outcome,
    }
    if link:
        result["invite_link"] = link
    emit(args, result)
    return 0


def member_list(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        rows = fetch_all(conn, "select * from private.practice_members_of(%s)", (args.practice,))
    emit(args, rows, ["email", "role", "added_at", "user_id"])
    return 0


def member_remove(args: argparse.Namespace) -> int:
    with operator_session() as conn:
        removed = scalar(
            conn, "select private.remove_practice_member(%s, %s)", (args.practice, args.email)
        )
    if not removed:
        raise CommandError(f"{args.email} is not a member of {args.practice}")
    emit(args, {"practice": args.practice, "email": args.email, "removed": True})
    return 0


def member_invitations(args: argparse.Namespace) -> int:
    try:
        done = process_pending(operator_database_url())
    except psycopg.Error as exc:
        raise CommandError(describe(exc)) from exc
    emit(args, [dataclasses.asdict(d) for d in done], ["practice", "email", "role", "outcome"])
    return 1 if any(d.outcome.startswith("failed") for d in done) else 0
