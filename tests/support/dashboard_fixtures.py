"""pytest fixtures of the dashboard tests: one database, world and running dashboard per
module (``dash``), built from the session's template database, and every user of its world
signed in (``visitors``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from mxstandin.server import StandinHandle, start_standin
from scripts import localdb
from tests.support.dashboard import DashboardServer, World, build_world, start_dashboard
from tests.support.dashboard_visitors import Visitor, signed_in_visitors


@dataclass
class Dash:
    owner_url: str
    dashboard_db_url: str
    world: World
    server: DashboardServer
    standin: StandinHandle
    logins: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dash(template_db: str) -> AsyncIterator[Dash]:
    name = f"mx_dash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    owner_url = localdb.create_database(name, template=template_db)
    standin = start_standin(seed=7)
    try:
        logins = localdb.create_service_logins(owner_url)
        world = await build_world(owner_url, standin)
        server = start_dashboard(logins["dashboard"])
        try:
            yield Dash(owner_url, logins["dashboard"], world, server, standin, logins)
        finally:
            server.stop()
    finally:
        standin.stop()
        localdb.drop_database(name)


@pytest.fixture(scope="module")
def visitors(dash: Dash) -> Iterator[dict[str, Visitor]]:
    """Every user of the world signed in (by role name), and ``anonymous``."""
    yield from signed_in_visitors(dash.base_url, dash.world.users)
