"""``python -m worker subscriptions subscribe|list|remove``: MX Merchant webhook subscriptions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from worker.commands.common import CommandError, add_json_flag, emit, progress
from worker.mx.client import DEFAULT_SOURCES, MxClient, MxError
from worker.ops.mx_access import MerchantAccess, merchant_access
from worker.ops.secrets_input import mask_callback_url

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
        help="subscribe the payment events (and optionally Chargeback)",
        description=f"PUT /subscription for {', '.join(PAYMENT_EVENTS)} (and Chargeback with "
        f"--chargeback), sources {DEFAULT_SOURCES}, threshold 0. An existing identical "
        "subscription "
        "(MX answers 'Duplicate notification') counts as done. The callback URL holds the secret "
        f"token: prefer {CALLBACK_ENV} over --callback-url, which shell history keeps.",
    )
    _merchant_id(subscribe)
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


def subscriptions_subscribe(args: argparse.Namespace) -> int:
    url = args.callback_url or os.environ.get(CALLBACK_ENV, "").strip()
    if not url:
        raise CommandError(f"give --callback-url or set {CALLBACK_ENV}")
    if "/webhooks/mx/" not in url:
        raise CommandError("the callback URL must be <WEBHOOK_PUBLIC_URL>/webhooks/mx/<token>")
    events = [*PAYMENT_EVENTS, *(["Chargeback"] if args.chargeback else [])]
    access = merchant_access(args.mx_merchant_id)

    async def run() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        async with _client(access) as client:
            for event_type in progress(events, len(events), "subscribing"):
                try:
                    result = await client.put_subscription(
                        access.credentials, access.mx_merchant_id, event_type, url
                    )
                    sub = result.subscription
                    results.append(
                        {
                            "event_type": event_type,
                            "outcome": result.outcome,
                            "subscription_id": sub.id if sub else None,
                            "error": None,
                        }
                    )
                except MxError as exc:
                    results.append(
                        {
                            "event_type": event_type,
                            "outcome": "failed",
                            "subscription_id": None,
                            "error": exc.message,
                        }
                    )
        return results

    results = asyncio.run(run())
    emit(args, results, ["event_type", "outcome", "subscription_id", "error"])
    failed = [r["event_type"] for r in results if r["outcome"] == "failed"]
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
