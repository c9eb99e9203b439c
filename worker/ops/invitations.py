"""Inviting a practice's staff: one code path for ``python -m worker member add`` and for the
invitations owners ask for on the dashboard's Team page (``app.member_invitations``).

With ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` set, the Auth admin API invites the
address (only the platform can send that e-mail, so this is supabase-py's one job here).
Without them (a local database), the local platform layer creates the invited account in its
``auth.users`` (``private.local_create_invited_user``). The dashboard has no service role:
it only records the invitation; the worker's scheduler (or the operator's ``member
invitations`` command) sends it and ``private.complete_member_invitation`` gives the role.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from worker.ops.errors import CommandError

SUPABASE_URL_ENV = "SUPABASE_URL"
SERVICE_KEY_ENV = "SUPABASE_SERVICE_ROLE_KEY"
DASHBOARD_URL_ENV = "DASHBOARD_PUBLIC_URL"

log = logging.getLogger("worker.invitations")


def confirm_url() -> str | None:
    """Where an invitation lands: the dashboard page that sets the new user's password."""
    base = os.environ.get(DASHBOARD_URL_ENV, "").rstrip("/")
    return f"{base}/auth/confirm" if base else None


def uses_supabase_auth() -> bool:
    return bool(os.environ.get(SUPABASE_URL_ENV) and os.environ.get(SERVICE_KEY_ENV))


def invite_user(conn: psycopg.Connection[Any], email: str) -> tuple[Any, str]:
    """Invite an address that has no account: its new user id and how (``invited`` through
    Supabase Auth, ``created locally`` in the local platform layer)."""
    if uses_supabase_auth():
        from supabase import create_client  # the platform path only

        url, key = os.environ[SUPABASE_URL_ENV], os.environ[SERVICE_KEY_ENV]
        try:
            redirect = confirm_url()
            options: Any = {"redirect_to": redirect} if redirect else {}  # a TypedDict
            response = create_client(url, key).auth.admin.invite_user_by_email(email, options)
        except Exception as exc:  # any Auth API failure becomes one line
            raise CommandError(f"Supabase Auth could not invite {email}: {exc}") from exc
        if response.user is None:
            raise CommandError(f"Supabase Auth returned no user for {email}")
        return response.user.id, "invited"
    row = conn.execute("select private.local_create_invited_user(%s)", (email,)).fetchone()
    return (row[0] if row else None), "created locally"


@dataclass
class InvitationOutcome:
    invitation_id: int
    practice: str
    email: str
    role: str
    outcome: str  # added / role changed / unchanged, or "failed: why"


def process_one(conn: psycopg.Connection[Any]) -> InvitationOutcome | None:
    """Send the oldest pending invitation and give its role, in the connection's current
    transaction; None when nothing is pending. A refusal marks the invitation failed (the
    owner sees why on the Team page) instead of raising."""
    with conn.cursor(row_factory=dict_row) as cur:
        claimed = cur.execute("select * from private.claim_member_invitation()").fetchone()
    if claimed is None:
        return None
    invitation_id = claimed["invitation_id"]
    result = InvitationOutcome(
        invitation_id, claimed["practice_slug"], claimed["email"], claimed["role"], ""
    )
    try:
        with conn.transaction():  # a savepoint: a refusal leaves the claim to be marked failed
            user_id = claimed["user_id"]
            if user_id is None:
                user_id, _how = invite_user(conn, claimed["email"])
            row = conn.execute(
                "select private.complete_member_invitation(%s, %s)", (invitation_id, user_id)
            ).fetchone()
        result.outcome = str(row[0]) if row else "unknown"
    except (CommandError, psycopg.Error) as exc:
        if isinstance(exc, psycopg.OperationalError):
            raise  # the database, not the invitation: try again on the next tick
        reason = str(exc)
        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            reason = exc.diag.message_primary
        conn.execute("select private.fail_member_invitation(%s, %s)", (invitation_id, reason))
        result.outcome = f"failed: {reason}"
    return result


def process_pending(database_url: str, limit: int = 100) -> list[InvitationOutcome]:
    """Every pending invitation (at most ``limit``), one transaction each."""
    done: list[InvitationOutcome] = []
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        for _ in range(limit):
            with conn.transaction():
                outcome = process_one(conn)
            if outcome is None:
                break
            fields = {"invitation_id": outcome.invitation_id, "outcome": outcome.outcome}
            log.info("member invitation", extra={"fields": fields})
            done.append(outcome)
    return done
