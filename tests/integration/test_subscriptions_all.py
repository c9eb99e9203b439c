"""``subscriptions subscribe``: every MX payment source; ``--all`` subscribes every active
merchant account and brings already subscribed ones up to date, in one command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import create_merchant
from tests.support.pipeline import query
from worker.__main__ import main

EVERY_SOURCE = "QuickPay,Customer,Invoice,Recurring,Order,MXExpress,MXRetail,API,Terminal,Rekey"
PUBLIC = "https://hooks.example.test"
OLD_SOURCES = "QuickPay,API,Recurring,Invoice,Customer,Terminal"


def subscribe_all(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code = main(["subscriptions", "subscribe", "--all", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_subscribe_all_covers_every_source_and_updates_old_subscriptions(
    db_url: str,
    standin: StandinHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("WEBHOOK_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("MX_BASE_URL", standin.base_url)
    old_id, new_id, off_id = 1000078001, 1000078002, 1000078003
    for mx_id in (old_id, new_id, off_id):
        created = standin.state.create_merchant(merchant_id=mx_id)
        create_merchant(
            db_url,
            mx_id,
            consumer_key=created["consumer_key"],
            consumer_secret=created["consumer_secret"],
        )
    main(["merchant", "disable", "--mx-merchant-id", str(off_id)])
    capsys.readouterr()
    # the first merchant was subscribed before, with six sources, at its valid token's URL
    main(["merchant", "rotate-token", "--mx-merchant-id", str(old_id), "--json"])
    old_url = json.loads(capsys.readouterr().out)["callback_url"]
    for n, event_type in enumerate(("PaymentSuccess", "PaymentFail", "RefundCreated"), start=1):
        standin.state.subscriptions[n] = {
            "id": n,
            "eventType": event_type,
            "merchantId": old_id,
            "sendWebhook": True,
            "callbackUrl": old_url,
            "sources": OLD_SOURCES,
            "threshold": "0",
        }

    rows = subscribe_all(capsys)
    outcomes = {(r["mx_merchant_id"], r["event_type"]): r["outcome"] for r in rows}
    assert outcomes == {
        (old_id, "PaymentSuccess"): "updated",
        (old_id, "PaymentFail"): "updated",
        (old_id, "RefundCreated"): "updated",
        (new_id, "PaymentSuccess"): "created",
        (new_id, "PaymentFail"): "created",
        (new_id, "RefundCreated"): "created",
    }
    old_subs = standin.state.subscriptions_for(old_id)
    assert len(old_subs) == 3
    assert all(s["callbackUrl"] == old_url for s in old_subs)  # the same valid token
    new_subs = standin.state.subscriptions_for(new_id)
    assert len({s["callbackUrl"] for s in new_subs}) == 1
    assert new_subs[0]["callbackUrl"].startswith(f"{PUBLIC}/webhooks/mx/")
    # its new token is one the webhook accepts
    token = new_subs[0]["callbackUrl"].rsplit("/", 1)[1]
    assert query(
        db_url,
        "select count(*) from app.webhook_tokens where retired_at is null"
        " and token_hash = private.hash_webhook_token(%s)",
        (token,),
    ) == [(1,)]
    assert all(s["sources"] == EVERY_SOURCE for s in [*old_subs, *new_subs])
    assert standin.state.subscriptions_for(off_id) == []  # disabled: left alone

    # once more: everything is up to date
    again = subscribe_all(capsys)
    assert {r["outcome"] for r in again} == {"duplicate"}
    assert len(standin.state.subscriptions_for(new_id)) == 3
