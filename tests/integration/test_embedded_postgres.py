"""The third way to find a database — an embedded Postgres (pgserver) when no server answers —
builds a working project database although it ships no contrib extensions: the migrations
apply through the Supabase CLI over its Unix socket, the local Vault keeps credentials without
pgcrypto, and the name search runs without pg_trgm."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pgserver

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import psycopg
from scripts import localdb
url = localdb.fresh_database("mx_embedded")
with psycopg.connect(url) as conn:
    practice = conn.execute(
        "insert into app.practices (name, slug) values ('Embedded', 'embedded') returning id"
    ).fetchone()[0]
    account = conn.execute(
        "select private.upsert_merchant_account(%s, 42, 'x', 'sandbox', 'key', 's3cret')",
        (practice,),
    ).fetchone()[0]
    print(conn.execute(
        "select consumer_key || '/' || consumer_secret from private.merchant_credentials(%s)",
        (account,),
    ).fetchone()[0])
    print(conn.execute(
        "select count(*) from api.list_memberships(%s, p_search => 'ann')", (practice,)
    ).fetchone()[0])
    # one member whose name matches the search and one whose name does not
    category = conn.execute(
        "select id from app.categories where practice_id = %s and name = 'TRT'", (practice,)
    ).fetchone()[0]
    for name in ("Joanna Smith", "Bob Jones"):
        patient = conn.execute(
            "insert into app.patients (practice_id, name) values (%s, %s) returning id",
            (practice, name),
        ).fetchone()[0]
        conn.execute(
            "insert into app.memberships (practice_id, patient_id, category_id, status, "
            "status_source) values (%s, %s, %s, 'active', 'staff')",
            (practice, patient, category),
        )
    print(conn.execute(
        "select count(*) from api.list_memberships(%s, p_search => 'ann')", (practice,)
    ).fetchone()[0])
    print(conn.execute(
        "select patient_name from api.list_memberships(%s, p_search => 'ann')", (practice,)
    ).fetchone()[0].replace(" ", "_"))
    print(conn.execute("select count(*) from api.list_memberships(%s)", (practice,)).fetchone()[0])
"""


def test_embedded_postgres_builds_a_working_project_database(tmp_path: Path) -> None:
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": server.get_uri()},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.cleanup()
    assert done.returncode == 0, done.stderr
    # credentials; search on an empty practice; search with one matching and one other
    # member finds exactly the matching one; without a search both are listed
    assert done.stdout.split() == ["key/s3cret", "0", "1", "Joanna_Smith", "2"]
