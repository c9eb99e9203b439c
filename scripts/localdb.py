"""Find the database server and build project databases on it.

The one way every command (make test, make demo, pytest, the benchmarks) finds Postgres:

1. ``DATABASE_URL`` when set (any database on the server; others are created beside it);
2. else the server on 127.0.0.1:5432 (user ``postgres``) when it answers (over TCP only);
3. else a private cluster under ``.localdb/cluster`` built with the machine's Postgres binaries
   (Debian's ``postgresql-15``, with pgTAP and plpgsql_check: everything ``make test`` needs),
   started on first use and left running; it listens on no TCP port, only on a Unix socket in
   its own directory, so it can never be mistaken for the shared server, nor the shared
   server's socket (``/var/run/postgresql``) for it;
4. else, on a machine without Postgres binaries, an embedded Postgres (``pgserver``) under
   ``.localdb/embedded``: enough for ``make demo``; ``make test`` stops with a clear message.

A *project database* is a fresh database with the local platform layer
(``sql/platform``, skipped on a real Supabase database), pgmq, and every migration
applied by the Supabase CLI (``supabase migration up --db-url``).

Usage::

    python -m scripts.localdb url              # print the server URL
    python -m scripts.localdb fresh NAME       # (re)create NAME, apply layer + migrations
    python -m scripts.localdb drop NAME
    python -m scripts.localdb stop             # stop the private cluster (make clean)
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from scripts import cluster

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SQL = sorted((ROOT / "sql" / "platform").glob("*.sql"))
SUPABASE_CLI = ROOT / "node_modules" / ".bin" / "supabase"
CLUSTER_DIR = ROOT / ".localdb" / "cluster"
EMBEDDED_DATA_DIR = ROOT / ".localdb" / "embedded"
LOCAL_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# the private cluster: its own socket directory named explicitly (libpq never falls back to
# the default socket directory when ``host`` is given), no TCP
CLUSTER_URL = f"postgresql://postgres@/postgres?host={CLUSTER_DIR}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False


@functools.cache
def server_url() -> str:
    """URL of a maintenance database on the chosen server, printed once to stderr."""
    if os.environ.get("DATABASE_URL"):
        url, origin = os.environ["DATABASE_URL"], "DATABASE_URL"
    elif _answers(LOCAL_SERVER_URL):
        url, origin = LOCAL_SERVER_URL, "local server on 127.0.0.1:5432"
    elif cluster.postgres_bindir() is not None:
        url, origin = private_cluster_url(), f"private cluster in {CLUSTER_DIR}, Unix socket only"
    else:
        from pgserver.postgres_server import get_server  # only without Postgres binaries

        EMBEDDED_DATA_DIR.mkdir(parents=True, exist_ok=True)
        server = get_server(EMBEDDED_DATA_DIR, cleanup_mode=None)
        url, origin = server.get_uri(), f"embedded Postgres in {EMBEDDED_DATA_DIR}"
    print(f"database: {_redact(url)} ({origin})", file=sys.stderr)
    return url


def private_cluster_url() -> str:
    """The private cluster under .localdb/cluster: created on first use, started when it is
    not running (it keeps running between commands; ``python -m scripts.localdb stop``)."""
    if not (CLUSTER_DIR / "PG_VERSION").exists():
        print(f"database: creating a private cluster in {CLUSTER_DIR}", file=sys.stderr)
        cluster.init_cluster(CLUSTER_DIR)
    if not _answers(CLUSTER_URL):
        cluster.start_cluster(CLUSTER_DIR, f"-c listen_addresses='' -k {CLUSTER_DIR}")
    return CLUSTER_URL


def stop_private_cluster() -> None:
    if (CLUSTER_DIR / "postmaster.pid").exists():
        cluster.pg_ctl(CLUSTER_DIR, "-m", "fast", "stop")


def database_url(name: str) -> str:
    """URL of database ``name`` on the chosen server."""
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(name: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def create_database(name: str, template: str | None = None) -> str:
    """Create an empty database (or a copy of ``template``); return its URL."""
    drop_database(name)
    with psycopg.connect(server_url(), autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return database_url(name)


def is_real_supabase(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select exists (select from pg_catalog.pg_roles where rolname = 'supabase_admin')"
        ).fetchone()
    return bool(row and row[0])


def apply_platform_layer(url: str) -> None:
    """Apply sql/platform and install pgmq when the database lacks them."""
    if is_real_supabase(url):
        print("real Supabase database: platform layer not applied", file=sys.stderr)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for path in PLATFORM_SQL:
            conn.execute(path.read_text())  # a trusted script
        available = conn.execute(
            "select exists (select from pg_catalog.pg_available_extensions where name = 'pgmq')"
        ).fetchone()
        installed = conn.execute(
            "select exists (select from pg_catalog.pg_namespace where nspname = 'pgmq')"
        ).fetchone()
    if installed and installed[0]:
        return
    if available and available[0]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create extension pgmq")
        return
    import pgmq  # the package bundles pgmq's SQL for a Postgres without the extension

    with psycopg.connect(url) as conn:
        pgmq.install_pgmq_sql(pgmq.get_embedded_install_sql(), conn=conn)
        conn.commit()


def cli_url(url: str) -> str:
    """A URL the Supabase CLI accepts: it wants TLS unless told otherwise (local servers have
    none), and a host part even when ``?host=`` names a Unix socket directory (pgserver)."""
    parts = urlsplit(url)
    if not parts.hostname:
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        parts = parts._replace(netloc=f"{user}localhost")
    url = urlunsplit(parts)
    separator = "&" if "?" in url else "?"
    return url if "sslmode=" in url else f"{url}{separator}sslmode=disable"


def supabase_cli(*args: str) -> subprocess.CompletedProcess[str]:
    if not SUPABASE_CLI.exists():
        raise SystemExit(f"Supabase CLI missing at {SUPABASE_CLI}: run `make setup`")
    return subprocess.run(
        [str(SUPABASE_CLI), "--workdir", str(ROOT), *args],
        cwd=ROOT,
        check=True,
        text=True,
        capture_output=True,
    )


def apply_migrations(url: str) -> None:
    try:
        supabase_cli("migration", "up", "--include-all", "--db-url", cli_url(url))
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"supabase migration up failed:\n{exc.stdout}\n{exc.stderr}") from exc


def fresh_database(name: str) -> str:
    """(Re)create ``name`` with the platform layer and every migration; return its URL."""
    url = create_database(name)
    apply_platform_layer(url)
    apply_migrations(url)
    return url


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"  # a Unix-socket URL keeps its ?host= directory
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def create_merchant(
    conn: psycopg.Connection[Any],
    *,
    name: str,
    slug: str,
    mx_merchant_id: int,
    environment: str,
    consumer_key: str | None,
    consumer_secret: str | None,
    account_name: str | None = None,
) -> tuple[Any, Any, str]:
    """A practice (by slug: renamed if it exists) with one merchant account (named after the
    practice unless ``account_name``), its API credentials in Vault and a new webhook token;
    returns (practice id, account id, token)."""
    token = secrets.token_urlsafe(24)
    practice = conn.execute(
        "insert into app.practices (name, slug) values (%s, %s) "
        "on conflict (slug) do update set name = excluded.name returning id",
        (name, slug),
    ).fetchone()
    assert practice is not None
    account = conn.execute(
        "select private.upsert_merchant_account(%s, %s, %s, %s, %s, %s)",
        (
            practice[0],
            mx_merchant_id,
            account_name or name,
            environment,
            consumer_key,
            consumer_secret,
        ),
    ).fetchone()
    assert account is not None
    conn.execute("select private.add_webhook_token(%s, %s)", (account[0], token))
    return practice[0], account[0], token


def act_as_user(conn: psycopg.Connection[Any], user_id: object) -> None:
    """For the rest of the current transaction, be ``user_id`` exactly as PostgREST makes a
    signed-in request: role ``authenticated`` and the JWT claims that auth.uid() and the RLS
    policies read."""
    conn.execute(
        "select set_config('role', 'authenticated', true), "
        "set_config('request.jwt.claims', %s, true)",
        (json.dumps({"sub": str(user_id), "role": "authenticated"}),),
    )


def psql_file(url: str, path: Path, *, tuples_only: bool = False, **variables: object) -> str:
    """Run a SQL file with psql (``-v name=value`` for each variable, stop on the first error);
    its standard output."""
    args = ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    if tuples_only:
        args += ["-A", "-t"]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    done = subprocess.run([*args, "-f", str(path)], check=True, capture_output=True, text=True)
    return done.stdout


def create_service_logins(url: str) -> dict[str, str]:
    """The services' least-privilege login roles (webhook, worker, dashboard) with fresh
    passwords (sql/ops/create_login_roles.sql); returns each service's database URL."""
    webhook, worker, dashboard = (secrets.token_urlsafe(16) for _ in range(3))
    psql_file(
        url,
        ROOT / "sql" / "ops" / "create_login_roles.sql",
        webhook_password=webhook,
        worker_password=worker,
        dashboard_password=dashboard,
    )
    return {
        "webhook": _with_user(url, "mx_webhook_login", webhook),
        "worker": _with_user(url, "mx_worker_login", worker),
        "dashboard": _with_user(url, "mx_dashboard_login", dashboard),
    }


def create_login_roles(url: str) -> tuple[str, str]:
    """The services' login roles (``create_service_logins``); returns the URLs of the webhook
    and of the worker."""
    urls = create_service_logins(url)
    return urls["webhook"], urls["worker"]


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "url":
        print(server_url())
        return 0
    if len(argv) == 2 and argv[0] == "fresh":
        # a URL psql, pg_prove and the Supabase CLI all accept
        print(cli_url(fresh_database(argv[1])))
        return 0
    if argv == ["stop"]:
        stop_private_cluster()
        return 0
    if len(argv) == 2 and argv[0] == "drop":
        drop_database(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
