"""Shared fixtures: real Postgres databases built from the real migrations.

A template database is built once per pytest run (platform layer + migrations through
the Supabase CLI); each test that needs a database gets its own copy of it, which
`create database ... template` makes in a few dozen milliseconds.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from mxstandin.server import StandinHandle, start_standin
from scripts import localdb

# the reliability_report fixture (tests/reliability_report.py) and the dashboard's (tests/support),
# for every test module
pytest_plugins = ["tests.reliability_report", "tests.support.dashboard_fixtures"]


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    name = f"mx_tpl_{os.getpid()}"
    localdb.fresh_database(name)
    yield name
    localdb.drop_database(name)


@pytest.fixture
def db_url(template_db: str) -> Iterator[str]:
    """URL of a fresh project database, dropped after the test."""
    name = f"mx_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = localdb.create_database(name, template=template_db)
    yield url
    localdb.drop_database(name)


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


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[StandinHandle]:
    """The MX stand-in on a loopback port; a module sets STANDIN_SEED for other data."""
    handle = start_standin(seed=getattr(request.module, "STANDIN_SEED", 7))
    yield handle
    handle.stop()


def onboard(db_url: str, standin: StandinHandle, mx_merchant_id: int) -> Merchant:
    """A merchant known to the stand-in (with API keys) and onboarded in the database."""
    created = standin.state.create_merchant(merchant_id=mx_merchant_id)
    return create_merchant(
        db_url,
        created["merchant_id"],
        consumer_key=created["consumer_key"],
        consumer_secret=created["consumer_secret"],
    )
