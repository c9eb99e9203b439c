"""Practices onboarded as MX merchants in a test database: through the same
``scripts.localdb.create_merchant`` the demo and the benchmarks use."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import psycopg

from mxstandin.server import StandinHandle
from scripts import localdb


@dataclass(frozen=True)
class Merchant:
    practice_id: uuid.UUID
    merchant_account_id: uuid.UUID
    mx_merchant_id: int
    consumer_key: str
    consumer_secret: str
    token: str


def create_merchant(
    db_url: str,
    mx_merchant_id: int,
    *,
    slug: str | None = None,
    consumer_key: str | None = None,
    consumer_secret: str | None = None,
    environment: str = "sandbox",
) -> Merchant:
    """A practice with one merchant account, Vault credentials and a webhook token."""
    key = consumer_key or f"key-{mx_merchant_id}"
    secret = consumer_secret or secrets.token_urlsafe(16)
    with psycopg.connect(db_url) as conn:
        practice_id, account_id, token = localdb.create_merchant(
            conn,
            name=f"Practice {mx_merchant_id}",
            slug=slug or f"practice-{mx_merchant_id}",
            mx_merchant_id=mx_merchant_id,
            environment=environment,
            consumer_key=key,
            consumer_secret=secret,
            account_name=f"DBA {mx_merchant_id}",
        )
    return Merchant(practice_id, account_id, mx_merchant_id, key, secret, token)


def onboard(db_url: str, standin: StandinHandle, mx_merchant_id: int) -> Merchant:
    """A merchant known to the stand-in (with API keys) and onboarded in the database."""
    created = standin.state.create_merchant(merchant_id=mx_merchant_id)
    return create_merchant(
        db_url,
        created["merchant_id"],
        consumer_key=created["consumer_key"],
        consumer_secret=created["consumer_secret"],
    )
