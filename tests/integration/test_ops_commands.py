"""Operator commands (practice, merchant, subscriptions, deadletters, status) run in-process
against a real database and the MX stand-in."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from mxstandin.server import StandinHandle
from scripts import localdb
from tests.support.merchants import Merchant, create_merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.__main__ import main

STANDIN_SEED = 11

PUBLIC = "https://hooks.example.test"
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def ops_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("WEBHOOK_PUBLIC_URL", PUBLIC)
    monkeypatch.delenv("MX_CONSUMER_KEY", raising=False)
    monkeypatch.delenv("MX_CONSUMER_SECRET", raising=False)
    monkeypatch.delenv("MX_BASE_URL", raising=False)
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------------------
# practices and merchants
# ---------------------------------------------------------------------------
def test_member_add_list_remove_on_the_local_platform(
    ops_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "practice", "add", "--name", "Bay Wellness", "--slug", "bay")
    added = run_json(
        capsys, "member", "add", "--practice", "bay", "--email", "Nurse@Bay.test", "--role", "staff"
    )
    assert (added["user"], added["membership"]) == ("created locally", "added")
    again = run_json(
        capsys, "member", "add", "--practice", "bay", "--email", "nurse@bay.test", "--role", "admin"
    )
    assert (again["user"], again["membership"]) == ("existing", "role changed")
    [member] = run_json(capsys, "member", "list", "--practice", "bay")
    assert (member["email"], member["role"]) == ("Nurse@Bay.test", "admin")

    # the new admin reads the practice through the API, exactly as PostgREST would
    with psycopg.connect(ops_env) as conn, conn.transaction():
        localdb.act_as_user(conn, member["user_id"])
        assert conn.execute("select slug from api.practices").fetchall() == [("bay",)]

    code, _, err = run(
        capsys, "member", "add", "--practice", "nope", "--email", "a@b.c", "--role", "staff"
    )
    assert code == 2
    assert 'no practice with slug "nope"' in err
    removed = run_json(capsys, "member", "remove", "--practice", "bay", "--email", "nurse@bay.test")
    assert removed["removed"] is True
    assert run_json(capsys, "member", "list", "--practice", "bay") == []
    code, _, err = run(capsys, "member", "remove", "--practice", "bay", "--email", "nurse@bay.test")
    assert code == 2
    assert "is not a member of bay" in err


def test_practice_add_update_list(ops_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    added = run_json(
        capsys,
        "practice",
        "add",
        "--name",
        "Bay Wellness",
        "--slug",
        "bay",
        "--timezone",
        "America/Denver",
    )
    assert added["slug"] == "bay"
    assert added["timezone"] == "America/Denver"

    code, _, err = run(capsys, "practice", "add", "--name", "Again", "--slug", "bay")
    assert code == 2
    assert err.startswith("error: a practice with slug 'bay' exists")

    code, _, err = run(capsys, "practice", "update", "bay", "--timezone", "Mars/Olympus")
    assert code == 2
    assert "unknown time zone" in err
    assert err[-1] == "\n"
    assert err.count("\n") == 1

    updated = run_json(
        capsys, "practice", "update", "bay", "--name", "Bay Clinic", "--new-slug", "bay-clinic"
    )
    assert (updated["name"], updated["slug"]) == ("Bay Clinic", "bay-clinic")
    listed = run_json(capsys, "practice", "list")
    assert [p["slug"] for p in listed] == ["bay-clinic"]
    code, out, _ = run(capsys, "practice", "list")
    assert code == 0
    assert "Bay Clinic" in out


def test_merchant_lifecycle_never_leaks_secrets(
    ops_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_json(capsys, "practice", "add", "--name", "Bay", "--slug", "bay")
    # no credentials in the environment and no terminal: a clear error, nothing stored
    code, _, err = run(
        capsys,
        "merchant",
        "add",
        "--practice",
        "bay",
        "--mx-merchant-id",
        "4001",
        "--environment",
        "sandbox",
        "--name",
        "Bay DBA",
    )
    assert code == 2
    assert "MX_CONSUMER_KEY" in err
    assert query(ops_env, "select count(*) from app.merchant_accounts") == [(0,)]

    monkeypatch.setenv("MX_CONSUMER_KEY", "key-4001")
    monkeypatch.setenv("MX_CONSUMER_SECRET", "very-secret-4001")
    added = run_json(
        capsys,
        "merchant",
        "add",
        "--practice",
        "bay",
        "--mx-merchant-id",
        "4001",
        "--environment",
        "sandbox",
        "--name",
        "Bay DBA",
    )
    url = added["callback_url"]
    assert url.startswith(f"{PUBLIC}/webhooks/mx/")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes
    # stored hashed only, credentials in Vault
    [(stored,)] = query(
        ops_env,
        "select count(*) from app.webhook_tokens where token_hash = private.hash_webhook_token(%s)",
        (token,),
    )
    assert stored == 1
    [(key, secret)] = query(
        ops_env,
        "select c.consumer_key, c.consumer_secret from app.merchant_accounts as m, "
        "private.merchant_credentials(m.id) as c where m.mx_merchant_id = 4001",
    )
    assert (key, secret) == ("key-4001", "very-secret-4001")
    [(outcome,)] = query(
        ops_env, "select outcome from private.ingest_webhook(%s, '{}'::jsonb)", (token,)
    )
    assert outcome != "unknown_token"

    code, _, err = run(
        capsys,
        "merchant",
        "add",
        "--practice",
        "bay",
        "--mx-merchant-id",
        "4001",
        "--environment",
        "sandbox",
        "--name",
        "Bay DBA",
    )
    assert code == 2
    assert "exists" in err

    # rotation: both valid, then only the newest
    rotated = run_json(capsys, "merchant", "rotate-token", "--mx-merchant-id", "4001")
    new_token = rotated["callback_url"].rsplit("/", 1)[1]
    assert rotated["active_tokens"] == 2
    assert new_token != token
    retired = run_json(
        capsys, "merchant", "retire-tokens", "--mx-merchant-id", "4001", "--keep-newest"
    )
    assert retired == {"mx_merchant_id": 4001, "retired": 1, "active_tokens": 1}
    [(old,)] = query(
        ops_env, "select outcome from private.ingest_webhook(%s, '{}'::jsonb)", (token,)
    )
    assert old == "unknown_token"

    disabled = run_json(capsys, "merchant", "disable", "--mx-merchant-id", "4001")
    assert disabled["is_active"] is False
    assert disabled["changed"] is True
    monkeypatch.setenv("MX_CONSUMER_SECRET", "rotated-secret")
    updated = run_json(
        capsys, "merchant", "update", "--mx-merchant-id", "4001", "--name", "Bay 2", "--credentials"
    )
    assert updated["name"] == "Bay 2"
    assert updated["is_active"] is False
    enabled = run_json(capsys, "merchant", "enable", "--mx-merchant-id", "4001")
    assert enabled["is_active"] is True

    code, out, _ = run(capsys, "merchant", "list")
    listed = run_json(capsys, "merchant", "list")
    for text in (out, json.dumps(listed)):
        assert "secret" not in text
        assert "key-4001" not in text
        assert new_token not in text
    assert listed[0]["mx_merchant_id"] == 4001
    assert listed[0]["has_credentials"] is True

    code, _, err = run(capsys, "merchant", "enable", "--mx-merchant-id", "999")
    assert code == 2
    assert err == "error: no merchant account with MX merchant id 999\n"


def test_help_is_available_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    groups = {
        "practice": ["add", "update", "list"],
        "merchant": ["add", "update", "disable", "enable", "list", "rotate-token", "retire-tokens"],
        "subscriptions": ["subscribe", "list", "remove"],
        "deadletters": ["list", "show", "replay"],
        "status": [],
    }
    for group, actions in groups.items():
        for argv in ([group, "--help"], *([group, a, "--help"] for a in actions)):
            with pytest.raises(SystemExit) as exit_info:
                main(argv)
            assert exit_info.value.code == 0
            assert "usage:" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# subscriptions
# ---------------------------------------------------------------------------
def test_subscriptions_subscribe_list_remove(
    ops_env: str,
    standin: StandinHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = standin.state.create_merchant(merchant_id=1000077001)
    create_merchant(
        ops_env,
        1000077001,
        consumer_key=created["consumer_key"],
        consumer_secret=created["consumer_secret"],
    )
    monkeypatch.setenv("MX_BASE_URL", standin.base_url)
    url = f"{PUBLIC}/webhooks/mx/abcdefghijklmnopqrstuvwxyz0123456789"

    first = run_json(
        capsys,
        "subscriptions",
        "subscribe",
        "--mx-merchant-id",
        "1000077001",
        "--callback-url",
        url,
    )
    assert [(r["event_type"], r["outcome"]) for r in first] == [
        ("PaymentSuccess", "created"),
        ("PaymentFail", "created"),
        ("RefundCreated", "created"),
    ]
    again = run_json(
        capsys,
        "subscriptions",
        "subscribe",
        "--mx-merchant-id",
        "1000077001",
        "--callback-url",
        url,
        "--chargeback",
    )
    assert [r["outcome"] for r in again] == ["duplicate", "duplicate", "duplicate", "created"]
    subs = standin.state.subscriptions_for(1000077001)
    assert len(subs) == 4
    assert all(
        s["sources"]
        == "QuickPay,Customer,Invoice,Recurring,Order,MXExpress,MXRetail,API,Terminal,Rekey"
        for s in subs
    )
    assert all(s["threshold"] in ("0", "0.00") for s in subs)

    listed = run_json(capsys, "subscriptions", "list", "--mx-merchant-id", "1000077001")
    assert len(listed) == 4
    assert all("abcdefghij" not in (s["callback_url"] or "") for s in listed)  # token masked

    removed = run_json(
        capsys,
        "subscriptions",
        "remove",
        "--mx-merchant-id",
        "1000077001",
        "--id",
        str(listed[0]["id"]),
    )
    assert removed["removed"] is True
    assert len(standin.state.subscriptions_for(1000077001)) == 3

    code, _, err = run(
        capsys, "subscriptions", "remove", "--mx-merchant-id", "1000077001", "--id", "1"
    )
    assert code == 2
    assert err.startswith("error: MX Merchant:")

    # a failure of one event type is reported per type, exit code 1
    standin.state.add_fault(
        {"path_prefix": "/checkout/v3/subscription", "kind": "bad_credentials", "count": 1}
    )
    code, out, err = run(
        capsys,
        "subscriptions",
        "subscribe",
        "--mx-merchant-id",
        "1000077001",
        "--callback-url",
        url + "x",
    )
    assert code == 1
    assert "PaymentSuccess" in err
    assert "failed" in out


# ---------------------------------------------------------------------------
# dead letters and status
# ---------------------------------------------------------------------------
@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000012345)


def _dead_event(db_url: str, standin: StandinHandle, merchant: Merchant) -> tuple[int, int]:
    """A sale whose payment fetch fails permanently: the event goes dead."""
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT], source="Recurring")
    payment_id = created["payment"]["id"]
    standin.state.add_fault(
        {"path_prefix": f"/checkout/v3/payment/{payment_id}", "kind": "not_found"}
    )
    _, event_id = ingest(db_url, merchant.token, created["webhook"])
    assert event_id is not None
    return event_id, payment_id


async def test_deadletters_list_show_replay(
    ops_env: str, standin: StandinHandle, merchant: Merchant, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id, payment_id = _dead_event(ops_env, standin, merchant)
    other_id, _ = _dead_event(ops_env, standin, merchant)
    settings = worker_settings(ops_env, standin.base_url)
    await drain(settings)
    assert query(ops_env, "select queue_length from private.queue_metrics('mx_ingest_dlq')") == [
        (2,)
    ]

    listed = run_json(capsys, "deadletters", "list", "--merchant", str(merchant.mx_merchant_id))
    assert {r["event_id"] for r in listed} == {event_id, other_id}
    assert all("not_found" in r["reason"] for r in listed)
    assert run_json(capsys, "deadletters", "list", "--merchant", "1") == []

    shown = run_json(capsys, "deadletters", "show", str(event_id))
    assert shown["status"] == "dead"
    assert shown["attempts"] >= 1
    assert shown["payload"]["id"] == str(payment_id)
    code, out, _ = run(capsys, "deadletters", "show", str(event_id))
    assert code == 0
    assert "payload (card data masked)" in out

    status = run_json(capsys, "status")
    assert status["dead_letters"]["depth"] == 2
    assert status["events_last_24h"]["dead"] == 2
    assert status["merchants"][0]["last_event_at"] is not None
    code, out, _ = run(capsys, "status")
    assert "dead letters:  2 messages" in out

    standin.state.clear_faults()
    dry = run_json(capsys, "deadletters", "replay", "--all-since", "2000-01-01T00:00Z", "--dry-run")
    assert {r["event_id"] for r in dry["would_replay"]} == {event_id, other_id}
    assert query(ops_env, "select count(*) from app.webhook_events where status = 'dead'") == [(2,)]

    replayed = run_json(capsys, "deadletters", "replay", str(event_id))
    assert replayed[0]["outcome"] == "replayed"
    [(st, attempts, err)] = query(
        ops_env,
        "select status, attempts, last_error from app.webhook_events where id = %s",
        (event_id,),
    )
    assert (st, attempts, err) == ("queued", 0, None)
    [(prev_err, removed)] = query(
        ops_env, "select previous_error, dlq_messages_removed from app.event_replays"
    )
    assert "not_found" in prev_err
    assert removed == 1
    # the other dead letter is still there and visible
    assert query(ops_env, "select queue_length from private.queue_metrics('mx_ingest_dlq')") == [
        (1,)
    ]
    assert query(ops_env, "select count(*) from private.queue_read('mx_ingest_dlq', 0, 10)") == [
        (1,)
    ]

    code, _, err = run(capsys, "deadletters", "replay", str(event_id))
    assert code == 2
    assert "not_replayable" in err

    await drain(settings)
    assert query(ops_env, "select status from app.webhook_events where id = %s", (event_id,)) == [
        ("processed",)
    ]
    assert query(ops_env, "select count(*) from app.payments") == [(1,)]

    replayed = run_json(
        capsys,
        "deadletters",
        "replay",
        "--all-since",
        "2000-01-01T00:00Z",
        "--reason-contains",
        "NOT_FOUND",
    )
    assert [r["event_id"] for r in replayed] == [other_id]
    await drain(settings)
    assert query(ops_env, "select queue_length from private.queue_metrics('mx_ingest_dlq')") == [
        (0,)
    ]
    assert query(ops_env, "select count(*) from app.webhook_events where status = 'processed'") == [
        (2,)
    ]


async def test_replay_never_double_applies(
    ops_env: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT], source="Recurring")
    _, event_id = ingest(ops_env, merchant.token, created["webhook"])
    settings = worker_settings(ops_env, standin.base_url)
    await drain(settings)

    def snapshot() -> list[tuple[Any, ...]]:
        return query(
            ops_env,
            "select (select count(*) from app.payments), (select count(*) from app.invoices), "
            "(select count(*) from app.invoice_lines), (select count(*) from app.memberships), "
            "(select count(*) from app.membership_events), (select count(*) from app.patients)",
        )

    before = snapshot()
    # a processed event replayed (as the event explorer may), plus a stray second message for it
    with psycopg.connect(ops_env) as conn:
        [row] = conn.execute(
            "select outcome from private.replay_events(array[%s]::bigint[], 'test', null, "
            "array['dead', 'processed'])",
            (event_id,),
        ).fetchall()
        assert row == ("replayed",)
        conn.execute(
            "select private.queue_send('mx_ingest', jsonb_build_object('event_id', %s::bigint))",
            (event_id,),
        )
    await drain(settings)
    assert snapshot() == before
    assert query(
        ops_env, "select status, attempts from app.webhook_events where id = %s", (event_id,)
    ) == [("processed", 1)]
    # the stray message, when claimed, yields no work (its event is finished) and is archived
    assert query(ops_env, "select count(*) from private.claim_ingest_events(10, 0)") == [(0,)]
    assert snapshot() == before


def test_status_reads_last_reconcile(ops_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    m = create_merchant(ops_env, 5005)
    assert run_json(capsys, "status")["merchants"][0]["last_reconcile"] is None
    with psycopg.connect(ops_env) as conn:
        conn.execute(
            "insert into app.sync_runs (practice_id, merchant_account_id, kind, status, "
            "finished_at) "
            "values (%s, %s, 'reconcile', 'failed', now())",
            (m.practice_id, m.merchant_account_id),
        )
    status = run_json(capsys, "status")
    assert status["merchants"][0]["last_reconcile"]["status"] == "failed"
    _code, out, _ = run(capsys, "status")
    assert "failed at" in out
