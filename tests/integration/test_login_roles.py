"""Issue 12, item 9: the services' login roles (sql/ops/create_login_roles.sql) get what they
need and nothing more: no large objects, no temporary objects, and, on a server that holds
only the project (``-v restrict_other_databases=on``), no connection to any other database."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import psycopg
import pytest

from scripts import localdb
from tests.support.private_postgres import private_postgres

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sql" / "ops" / "create_login_roles.sql"
LOGINS = ("mx_webhook_login", "mx_worker_login")


def _login_url(url: str, database: str, role: str) -> str:
    # the private cluster trusts local connections: the role name is what is checked
    return url.rsplit("/", 1)[0].replace("postgres@", f"{role}@") + f"/{database}"


def _assert_nothing_extra(conn_url: str) -> None:
    with psycopg.connect(conn_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select lo_create(0)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select lo_from_bytea(0, 'x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create temporary table scratch (x int)")


def test_login_roles_create_no_large_or_temporary_objects(db_url: str) -> None:
    webhook_url, worker_url = localdb.create_login_roles(db_url)
    for url in (webhook_url, worker_url):
        _assert_nothing_extra(url)
        # and they still do their work: their own procedures answer
        with psycopg.connect(url) as conn:
            conn.execute("select 1")
    with psycopg.connect(worker_url) as conn:
        conn.execute("select * from private.queue_depths()").fetchall()


def test_login_roles_reach_only_the_project_database() -> None:
    with private_postgres() as pg:
        url = pg.project_database("mx")
        subprocess.run(
            ["psql", pg.url(), "-q", "-c", "create database other"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        out = localdb.psql_file(
            url,
            SCRIPT,
            tuples_only=True,
            webhook_password=secrets.token_urlsafe(16),
            worker_password=secrets.token_urlsafe(16),
            restrict_other_databases="on",
        )
        assert "the login roles can connect to this database only" in out
        for role in LOGINS:
            with psycopg.connect(_login_url(pg.url(), "mx", role)) as conn:
                assert conn.execute("select current_user").fetchone() == (role,)
            for other in ("other", "postgres", "template1"):
                with pytest.raises(psycopg.OperationalError, match="permission denied"):
                    psycopg.connect(_login_url(pg.url(), other, role)).close()
            _assert_nothing_extra(_login_url(pg.url(), "mx", role))
        # the owner of another database still reaches it
        psycopg.connect(pg.url("other")).close()
