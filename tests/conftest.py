"""The shared fixtures (helpers live in tests/support/): real Postgres databases built
from the real migrations.

A template database is built once per pytest run (platform layer + migrations through
the Supabase CLI); each test that needs a database gets its own copy of it, which
`create database ... template` makes in a few dozen milliseconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from mxstandin.server import StandinHandle, start_standin
from scripts import localdb

# the reliability_report fixture and the dashboard's fixtures (tests/support), for every test module
pytest_plugins = ["tests.support.reliability_report", "tests.support.dashboard_fixtures"]


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


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[StandinHandle]:
    """The MX stand-in on a loopback port; a module sets STANDIN_SEED for other data."""
    handle = start_standin(seed=getattr(request.module, "STANDIN_SEED", 7))
    yield handle
    handle.stop()
