"""``python -m worker subscriptions subscribe|list|remove``: MX Merchant webhook subscriptions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from worker.commands.common import CommandError, add_json_flag, emit, progress
from worker.mx.client import DEFAULT_SOURCES, MxClient, MxError
from worker.ops.db import fetch_all, operator_session, scalar
from worker.ops.mx_access import MerchantAccess, merchant_access
from worker.ops.secrets_input import (
    PUBLIC_URL_ENV,
    callback_url,
    mask_callback_url,
    new_token,
    public_url_configured,
)

PAYMENT_EVENTS = ["PaymentSuccess", "PaymentFail", "RefundCreated"]
CALLBACK_ENV = "MX_CALLBACK_URL"


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "subscriptions",
        help="subscribe a merchant's webhooks at MX Merchant, list and remove subscriptions",
        description="Webhook subscriptions at MX Merchant (PUT/GET/DELETE /subscription). "
        "Credentials "
        "come from Vault; the API base URL from MX_BASE_URL, else the account's environment.",
    )
    sub = parser.add_subparsers(dest="subscriptions_command", required=True, metavar="ACTION")

    subscribe = sub.add_parser(
        "subscribe",
        help="subscribe a merchant's (or every active merchant's) payment events, every source",
        description=f"PUT /subscription for {', '.join(PAYMENT_EVENTS)} (and Chargeback with "
        f"--chargeback), sources {DEFAULT_SOURCES} (every source MX offers), threshold 0. "
        "A subscription that exists with fewer sources is brought up to date (removed and made "
        "again: outcome 'updated'); one that exists with every source counts as done "
        "('duplicate'). With --all: every active merchant account, each with the callback URL "
        "its current subscriptions use (when its token is still valid), else a new token "
        f"(needs {PUBLIC_URL_ENV}). The callback URL holds the secret token: prefer "
        f"{CALLBACK_ENV} over --callback-url, which shell history keeps.",
    )
    target = subscribe.add_mutually_exclusive_group(required=True)
    target.add_argument("--mx-merchant-id", type=int, metavar="N", help="MX merchant id")
    target.add_argument(
        "--all", action="store_true", help="every active merchant account (no --callback-url)"
    )
    subscribe.add_argument(
        "--callback-url",
        metavar="URL",
        help=f"the URL `merchant add` printed (default: ${CALLBACK_ENV})",
    )
    subscribe.add_argument("--chargeback", action="store_true", help="also subscribe Chargeback")
    add_json_flag(subscribe)
    subscribe.set_defaults(handler=subscriptions_subscribe)

    lister = sub.add_parser(
        "list",
        help="list a merchant's subscriptions",
        description="GET /subscription (tokens masked).",
    )
    _merchant_id(lister)
    add_json_flag(lister)
    lister.set_defaults(handler=subscriptions_list)

    remove = sub.add_parser(
        "remove", help="remove a subscription", description="DELETE /subscription/{id}."
    )
    _merchant_id(remove)
    remove.add_argument(
        "--id", required=True, type=int, dest="subscription_id", help="subscription id"
    )
    add_json_flag(remove)
    remove.set_defaults(handler=subscriptions_remove)


def _merchant_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mx-merchant-id", required=True, type=int, metavar="N", help="MX merchant id"
    )


def _client(access: MerchantAccess) -> MxClient:
    return MxClient(access.base_url, total_timeout=30.0, per_merchant_concurrency=1)


def _covers(sources: str | None) -> bool:
    """True when a subscription's sources include every source of DEFAULT_SOURCES."""
    have = {x.strip().lower() for x in (sources or "").split(",")}
    return all(x.lower() in have for x in DEFAULT_SOURCES.split(","))


def _token_valid(mx_merchant_id: int, url: str) -> bool:
    token = url.rsplit("/webhooks/mx/", 1)[-1]
    with operator_session() as conn:
        return bool(
            scalar(
                conn,
                "select exists (select from app.webhook_tokens as t "
                "inner join app.merchant_accounts as m on m.id = t.merchant_account_id "
                "where m.mx_merchant_id = %s and t.retired_at is null "
                "and t.token_hash = private.hash_webhook_token(%s))",
                (mx_merchant_id, token),
            )
        )


def _new_callback_url(mx_merchant_id: int) -> str:
    """A new token for the account (as `merchant rotate-token` makes) and its callback URL."""
    public_url_configured()
    token = new_token()
    with operator_session() as conn:
        conn.execute(
            "select private.add_webhook_token(m.id, %s) from app.merchant_accounts as m "
            "where m.mx_merchant_id = %s",
            (token, mx_merchant_id),
        )
    return callback_url(token)


def _failed(mx_merchant_id: int, event_type: str, error: str) -> dict[str, Any]:
    return {
        "mx_merchant_id": mx_merchant_id,
        "event_type": event_type,
        "outcome": "failed",
        "subscription_id": None,
        "error": error,
    }


async def _subscribe_merchant(
    access: MerchantAccess, events: list[str], url: str | None
) -> list[dict[str, Any]]:
    """Subscribe (or bring up to date) ``events`` of one merchant; one result row per event."""
    mid = access.mx_merchant_id
    results: list[dict[str, Any]] = []
    async with _client(access) as client:
        try:
            existing = await client.list_subscriptions(access.credentials, mid)
        except MxError as exc:
            return [_failed(mid, event_type, exc.message) for event_type in events]
        if url is None:
            url = next(
                (
                    s.callback_url
                    for s in existing
                    if s.callback_url
                    and "/webhooks/mx/" in s.callback_url
                    and _token_valid(mid, s.callback_url)
                ),
                None,
            ) or _new_callback_url(mid)
        for event_type in events:
            row: dict[str, Any] = {"mx_merchant_id": mid, "event_type": event_type, "error": None}
            mine = [s for s in existing if s.event_type == event_type and s.callback_url == url]
            try:
                if mine and all(_covers(s.sources) for s in mine):
                    row.update(outcome="duplicate", subscription_id=mine[0].id)
                else:
                    # MX keeps one subscription per event and URL: the old one goes first
                    for old in mine:
                        if old.id is not None:
                            await client.delete_subscription(access.credentials, mid, old.id)
                    result = await client.put_subscription(access.credentials, mid, event_type, url)
                    sub = result.subscription
                    row.update(
                        outcome="updated" if mine else result.outcome,
                        subscription_id=sub.id if sub else None,
                    )
            except MxError as exc:
                row = _failed(mid, event_type, exc.message)
            results.append(row)
    return results


def subscriptions_subscribe(args: argparse.Namespace) -> int:
    events = [*PAYMENT_EVENTS, *(["Chargeback"] if args.chargeback else [])]
    url: str | None = None
    if args.all:
        if args.callback_url:
            raise CommandError("--callback-url is one merchant's URL: give --mx-merchant-id")
        with operator_session() as conn:
            merchants = [
                int(r["mx_merchant_id"])
                for r in fetch_all(
                    conn,
                    "select mx_merchant_id from app.merchant_accounts where is_active "
                    "order by mx_merchant_id",
                )
            ]
    else:
        url = args.callback_url or os.environ.get(CALLBACK_ENV, "").strip()
        if not url:
            raise CommandError(f"give --callback-url or set {CALLBACK_ENV}")
        if "/webhooks/mx/" not in url:
            raise CommandError("the callback URL must be <WEBHOOK_PUBLIC_URL>/webhooks/mx/<token>")
        merchants = [args.mx_merchant_id]

    results: list[dict[str, Any]] = []
    for mx_merchant_id in progress(merchants, len(merchants), "subscribing"):
        try:
            access = merchant_access(mx_merchant_id)
            results.extend(asyncio.run(_subscribe_merchant(access, events, url)))
        except CommandError as exc:
            if not args.all:
                raise
            # one merchant without credentials (say) does not stop the others
            results.extend(_failed(mx_merchant_id, event_type, str(exc)) for event_type in events)
    emit(args, results, ["mx_merchant_id", "event_type", "outcome", "subscription_id", "error"])
    failed = [
        f"{r['mx_merchant_id']}/{r['event_type']}" for r in results if r["outcome"] == "failed"
    ]
    if failed:
        print(f"error: not subscribed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def subscriptions_list(args: argparse.Namespace) -> int:
    access = merchant_access(args.mx_merchant_id)

    async def run() -> list[dict[str, Any]]:
        async with _client(access) as client:
            subs = await client.list_subscriptions(access.credentials, access.mx_merchant_id)
        return [
            {
                "id": s.id,
                "event_type": s.event_type,
                "callback_url": mask_callback_url(s.callback_url),
                "sources": s.sources,
                "send_webhook": s.send_webhook,
            }
            for s in subs
        ]

    try:
        rows = asyncio.run(run())
    except MxError as exc:
        raise CommandError(f"MX Merchant: {exc.message}") from exc
    emit(args, rows, ["id", "event_type", "callback_url", "sources", "send_webhook"])
    return 0


def subscriptions_remove(args: argparse.Namespace) -> int:
    access = merchant_access(args.mx_merchant_id)

    async def run() -> None:
        async with _client(access) as client:
            await client.delete_subscription(
                access.credentials, access.mx_merchant_id, args.subscription_id
            )

    try:
        asyncio.run(run())
    except MxError as exc:
        raise CommandError(f"MX Merchant: {exc.message}") from exc
    emit(args, {"id": args.subscription_id, "removed": True})
    return 0
