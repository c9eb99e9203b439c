"""The worker's side of the Team page and the operator commands: ``member invitations``
sends what owners asked for (the same code as ``member add``), the scheduler does it on its
tick, ``member add --role viewer``, and ``operator add|list|remove``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from scripts import localdb
from tests.support.pipeline import worker_settings
from worker.__main__ import main
from worker.consumer import make_pool
from worker.mx.client import MxClient
from worker.ops import invitations
from worker.scheduler import Scheduler


@pytest.fixture
def ops_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def owner_invites(url: str, practice_slug: str, email: str, role: str) -> str:
    """What the Team page does: api.invite_practice_member as the signed-in owner."""
    with psycopg.connect(url) as conn, conn.transaction():
        owner = conn.execute(
            "select m.user_id from app.practice_members as m join app.practices as p "
            "on p.id = m.practice_id where p.slug = %s and m.role = 'owner'",
            (practice_slug,),
        ).fetchone()
        assert owner is not None
        practice = conn.execute(
            "select id from app.practices where slug = %s", (practice_slug,)
        ).fetchone()
        assert practice is not None
        localdb.act_as_user(conn, owner[0])
        row = conn.execute(
            "select api.invite_practice_member(%s, %s, %s)", (practice[0], email, role)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_member_invitations_sends_what_owners_asked_for(
    ops_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "practice", "add", "--name", "Bay Wellness", "--slug", "bay")
    added = run_json(
        capsys, "member", "add", "--practice", "bay", "--email", "boss@bay.test", "--role", "owner"
    )
    assert added["membership"] == "added"
    viewer = run_json(
        capsys, "member", "add", "--practice", "bay", "--email", "eye@bay.test", "--role", "viewer"
    )
    assert viewer["membership"] == "added"

    assert owner_invites(ops_env, "bay", "New@Bay.test", "staff") == "invitation queued"
    assert run_json(capsys, "member", "list", "--practice", "bay")[-1]["email"] != "new@bay.test"
    done = run_json(capsys, "member", "invitations")
    assert [(d["email"], d["role"], d["outcome"]) for d in done] == [
        ("new@bay.test", "staff", "added")
    ]
    members = {
        m["email"]: m["role"] for m in run_json(capsys, "member", "list", "--practice", "bay")
    }
    assert members == {"boss@bay.test": "owner", "eye@bay.test": "viewer", "new@bay.test": "staff"}
    with psycopg.connect(ops_env) as conn:
        invited = conn.execute(
            "select invited_at is not null from auth.users where email = 'new@bay.test'"
        ).fetchone()
        status = conn.execute("select status from app.member_invitations").fetchone()
    assert invited == (True,)  # the local platform layer's invited account
    assert status == ("sent",)
    assert run_json(capsys, "member", "invitations") == []  # nothing pending: nothing done

    # an address someone registered and never confirmed: the invitation fails, with why
    with psycopg.connect(ops_env, autocommit=True) as conn:
        conn.execute(
            "insert into app.member_invitations (practice_id, email, role) "
            "select id, 'squat@bay.test', 'staff' from app.practices where slug = 'bay'"
        )
        conn.execute("insert into auth.users (email) values ('squat@bay.test')")
    code, out, _ = run(capsys, "member", "invitations", "--json")
    assert code == 1
    [failed] = json.loads(out)
    assert failed["outcome"].startswith("failed: the account")
    with psycopg.connect(ops_env) as conn:
        row = conn.execute(
            "select status, error from app.member_invitations where email = 'squat@bay.test'"
        ).fetchone()
    assert row is not None
    assert row[0] == "failed"
    assert "neither confirmed" in row[1]


def test_the_scheduler_sends_invitations(ops_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "practice", "add", "--name", "Bay Wellness", "--slug", "bay")
    run_json(
        capsys, "member", "add", "--practice", "bay", "--email", "boss@bay.test", "--role", "owner"
    )
    owner_invites(ops_env, "bay", "tick@bay.test", "admin")

    async def tick() -> int:
        settings = worker_settings(ops_env, "http://127.0.0.1:9", scheduler_enabled=False)
        pool = make_pool(settings, application_name="test")
        await pool.open()
        try:
            async with MxClient("http://127.0.0.1:9") as mx:  # not called by this job
                return await Scheduler(settings, pool, mx, asyncio.Event()).send_invitations()
        finally:
            await pool.close()

    assert asyncio.run(tick()) == 1
    members = {
        m["email"]: m["role"] for m in run_json(capsys, "member", "list", "--practice", "bay")
    }
    assert members["tick@bay.test"] == "admin"
    assert invitations.process_pending(ops_env) == []


def test_operator_add_list_remove(ops_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(ops_env, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (email, email_confirmed_at) values ('ops@service.test', now())"
        )
        conn.execute("insert into auth.users (email) values ('maybe@service.test')")
    assert run_json(capsys, "operator", "add", "OPS@service.test")["operator"] == "added"
    assert run_json(capsys, "operator", "add", "ops@service.test")["operator"] == "unchanged"
    assert [o["email"] for o in run_json(capsys, "operator", "list")] == ["ops@service.test"]
    code, _, err = run(capsys, "operator", "add", "ghost@service.test")
    assert code == 2
    assert "no account with the e-mail ghost@service.test" in err
    code, _, err = run(capsys, "operator", "add", "maybe@service.test")
    assert code == 2
    assert "has not confirmed its e-mail address" in err
    assert run_json(capsys, "operator", "remove", "ops@service.test")["removed"] is True
    code, _, err = run(capsys, "operator", "remove", "ops@service.test")
    assert code == 2
    assert "is not an operator" in err
    assert run_json(capsys, "operator", "list") == []
