"""Traffic and checks every scenario shares: sales in the stand-in, counts in the database,
waiting for the queue to drain."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from mxstandin.state import StandinState
from tests.support.pipeline import UNFINISHED_SQL, query

ROOT = Path(__file__).resolve().parents[3]
PRODUCTS = [
    "Testosterone Cypionate 200mg/ml",
    "Semaglutide 2.5mg",
    "Tirzepatide 10mg",
    "BPC-157 5mg",
    "Sermorelin 9mg",
    "Lab Panel",
]


# ------------------------------------------------------------------ merchants and traffic


def new_sale(state: StandinState, mx_merchant_id: int, rng: random.Random) -> dict[str, Any]:
    """A sale of 1-3 products in the stand-in; returns the MX webhook body for it."""
    lines = [{"product_name": name} for name in rng.sample(PRODUCTS, rng.randint(1, 3))]
    return state.create_sale(mx_merchant_id, lines=lines)["webhook"]


CONNECT_TIMEOUT = 5  # seconds: a check against a server that does not answer fails, not hangs


def scalar(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return query(db_url, sql, params, connect_timeout=CONNECT_TIMEOUT)[0][0]


def event_statuses(db_url: str) -> dict[str, int]:
    return dict(
        query(
            db_url,
            "select status, count(*) from app.webhook_events group by 1",
            connect_timeout=CONNECT_TIMEOUT,
        )
    )


def wait_until_drained(db_url: str, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll on one connection until no event is queued or retrying; fail if a worker exits
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        while left := _count(conn, UNFINISHED_SQL):
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(f"a worker exited with {proc.returncode} before draining")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} events unfinished after {timeout}s")
            time.sleep(0.2)


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0
