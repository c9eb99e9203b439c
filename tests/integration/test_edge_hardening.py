"""Issue 12, the edge items over real HTTP and real processes on a real Postgres:
the per-token rate limit holds across two webhook processes (item 12), a flood of rejected
bodies stores a bounded amount (item 5), metrics are served only on their own loopback
address, one port per process (item 8), and `member add` gives a role only to a confirmed or
invited address (item 2)."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from scripts.procs import free_port, start, stop, wait_http
from tests.support.merchants import Merchant, create_merchant
from tests.support.webhook_server import start_webhook
from worker.__main__ import main as worker_main
from worker.settings import WorkerSettings

MX_MERCHANT_ID = 1000012345


def _body(payment_id: int) -> dict[str, str]:
    return {"eventType": "PaymentSuccess", "merchantId": str(MX_MERCHANT_ID), "id": str(payment_id)}


@pytest.fixture
def merchant(db_url: str) -> Merchant:
    return create_merchant(db_url, MX_MERCHANT_ID)


def _start_webhooks(
    db_url: str, tmp_path: Path, count: int, taken: set[int] | None = None, **env: str
) -> Iterator[list[tuple[str, int]]]:
    """``count`` separate ``python -m webhook`` processes on one database: (base URL, metrics
    port) each; no port in ``taken`` is used."""
    procs, urls = [], []
    taken = set(taken or ())
    try:
        for n in range(count):
            port, metrics_port = _distinct_port(taken), _distinct_port(taken)
            procs.append(
                start(
                    f"webhook-{n}",
                    ["-m", "webhook"],
                    {
                        "DATABASE_URL": db_url,
                        "WEBHOOK_PORT": str(port),
                        "WEBHOOK_METRICS_PORT": str(metrics_port),
                        "WEBHOOK_RATE_PER_ADDRESS": "0",
                        **env,
                    },
                    tmp_path,
                )
            )
            urls.append((f"http://127.0.0.1:{port}", metrics_port))
        for url, _ in urls:
            wait_http(f"{url}/readyz", tmp_path)
        yield urls
    finally:
        stop(*procs)


def _distinct_port(taken: set[int]) -> int:
    """A free port none of this test's processes was given yet (a released port comes back)."""
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


@pytest.fixture
def two_webhooks(db_url: str, tmp_path: Path) -> Iterator[list[tuple[str, int]]]:
    yield from _start_webhooks(
        db_url, tmp_path, 2, WEBHOOK_RATE_PER_TOKEN="2", WEBHOOK_BURST_PER_TOKEN="10"
    )


def test_the_token_limit_holds_across_two_webhook_processes(
    db_url: str, merchant: Merchant, two_webhooks: list[tuple[str, int]]
) -> None:
    # 40 requests, alternating between the processes, as fast as they answer: one bucket of
    # 10 (+2 a second) for the token, not 10 per process
    codes: dict[str, list[int]] = {url: [] for url, _ in two_webhooks}
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for n in range(40):
            url = two_webhooks[n % 2][0]
            response = client.post(f"{url}/webhooks/mx/{merchant.token}", json=_body(5000 + n))
            codes[url].append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
    elapsed = time.monotonic() - started
    accepted = sum(c.count(200) for c in codes.values())
    assert accepted <= 10 + 2 * elapsed + 1, (accepted, elapsed, codes)
    assert accepted >= 10
    assert all(429 in c for c in codes.values()), codes  # both processes enforce the one limit
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from app.webhook_events").fetchone()
    assert row is not None
    assert row[0] == accepted  # a 429 stores nothing


def _free_port_pair() -> int:
    """A port p with p + 1 free too, below the kernel's ephemeral range: an ephemeral p + 1
    can be the local port of any outgoing connection meanwhile (a database client's), and the
    second process then takes p + 2, which the test does not look at."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row below the ephemeral range")


def test_metrics_only_on_their_own_loopback_port_one_per_process(
    db_url: str, merchant: Merchant, tmp_path: Path
) -> None:
    metrics_port = _free_port_pair()  # the second process takes metrics_port + 1
    for [(url, _)] in _start_webhooks(
        db_url,
        tmp_path,
        1,
        {metrics_port, metrics_port + 1},
        WEBHOOK_WORKERS="2",
        WEBHOOK_METRICS_PORT=str(metrics_port),
    ):
        assert httpx.get(f"{url}/metrics").status_code == 404  # not on the public port
        for _ in range(20):
            httpx.post(f"{url}/webhooks/mx/{merchant.token}", json=_body(1), timeout=10)
        texts = []
        deadline = time.monotonic() + 15
        while len(texts) < 2 and time.monotonic() < deadline:
            texts = []
            for port in (metrics_port, metrics_port + 1):  # the second process takes port + 1
                try:
                    texts.append(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
                except httpx.HTTPError:
                    time.sleep(0.2)
        assert len(texts) == 2
        assert all("mx_webhook_request_seconds" in t for t in texts)
        served = sum(
            float(line.rsplit(" ", 1)[1])
            for t in texts
            for line in t.splitlines()
            if line.startswith("mx_webhook_events_total{")
        )
        assert served == 20  # each request counted by the process that answered it


def test_metrics_default_to_loopback_everywhere() -> None:
    from webhook.settings import Settings

    assert Settings(database_url="x").webhook_metrics_host == "127.0.0.1"
    assert WorkerSettings(database_url="x").worker_metrics_host == "127.0.0.1"
    # the public port is never a metrics port, for any process of WEBHOOK_WORKERS
    with pytest.raises(ValueError, match="must not include WEBHOOK_PORT"):
        Settings(database_url="x", webhook_port=9466, webhook_metrics_port=9465, webhook_workers=2)


def test_a_flood_of_rejected_bodies_stores_a_bounded_amount(
    db_url: str, merchant: Merchant
) -> None:
    with (
        start_webhook(db_url, webhook_rate_per_token=0, webhook_rejects_per_hour=20) as server,
        httpx.Client(timeout=10) as client,
    ):
        for n in range(60):
            body = f"not json {n} " + "x" * 64000
            response = client.post(
                f"{server.base_url}/webhooks/mx/{merchant.token}",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 400
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "select count(*), max(length(raw_body)), sum(pg_column_size(e.*))"
            " from app.webhook_events as e where status = 'rejected'"
        ).fetchone()
        assert stored is not None
        count, longest, size = stored
        assert count == 20
        assert longest == 2048
        assert size < 20 * 4096  # ~3 KB a row, not 64 KB
        counted = conn.execute(
            "select sum(stored), sum(not_stored) from app.webhook_reject_counts"
        ).fetchone()
    assert counted == (20, 40)


@pytest.fixture
def ops_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select private.create_practice('Bay Clinic', 'bay')")
    return db_url


def _member_add(capsys: pytest.CaptureFixture[str], email: str, role: str) -> tuple[int, Any]:
    code = worker_main(
        ["member", "add", "--practice", "bay", "--email", email, "--role", role, "--json"]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def test_member_add_gives_no_role_to_an_address_someone_registered_first(
    ops_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # someone signed up with the future owner's address (open sign-up), never confirmed it
    with psycopg.connect(ops_env, autocommit=True) as conn:
        conn.execute("insert into auth.users (email) values ('owner@bay.test')")
    code, err = _member_add(capsys, "owner@bay.test", "owner")
    assert code != 0
    assert "has not confirmed its e-mail address" in err
    with psycopg.connect(ops_env) as conn:
        assert conn.execute("select count(*) from app.practice_members").fetchone() == (0,)
        # once the address is confirmed (its owner signed in through the link), it does
        conn.execute("update auth.users set email_confirmed_at = now()")
        conn.commit()
    code, added = _member_add(capsys, "owner@bay.test", "owner")
    assert code == 0
    assert (added["user"], added["membership"]) == ("existing", "added")
    # a new address is invited (locally: created as invited) and gets its role
    code, added = _member_add(capsys, "nurse@bay.test", "staff")
    assert code == 0
    assert (added["user"], added["membership"]) == ("created locally", "added")
    with psycopg.connect(ops_env) as conn:
        invited = conn.execute(
            "select invited_at is not null from auth.users where email = 'nurse@bay.test'"
        ).fetchone()
    assert invited == (True,)


def test_open_sign_up_is_off_in_the_supabase_config() -> None:
    import tomllib

    config = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "supabase" / "config.toml").read_text()
    )
    assert config["auth"]["enable_signup"] is False
    assert config["auth"]["email"]["enable_signup"] is False
    assert config["auth"]["email"]["enable_confirmations"] is True
