"""What every benchmark uses: paths, sizes, pgbench and wrk runs, MX webhook bodies, medians."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from scripts import localdb
from scripts.bench.load import pct
from webhook.payload import EXAMPLE

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
GENERATOR = ROOT / "sql" / "bench" / "generate_scale_data.sql"
CONCURRENCY = 10  # wrk connections = pgbench clients = the webhook's database connections
WEBHOOK_PROCESSES = 2  # WEBHOOK_WORKERS: one per core


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# ------------------------------------------------------------------------------ helpers


def pgbench(
    url: str, script: Path, clients: int, extra: list[str], log_prefix: str
) -> dict[str, float]:
    """Run pgbench with per-transaction logs; tps and latency percentiles (ms)."""
    for old in RUN_DIR.glob(f"{log_prefix}*"):
        old.unlink()
    cmd = [
        "pgbench",
        "-n",
        "-M",
        "extended",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-f",
        str(script),
        "-l",
        f"--log-prefix={RUN_DIR / log_prefix}",
        *extra,
        url,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=RUN_DIR)
    text = out.stdout + out.stderr
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial", text).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", text)
    lat: list[float] = []
    for path in RUN_DIR.glob(f"{log_prefix}*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]) / 1000)
    return {
        "tps": tps,
        "transactions": len(lat),
        "failed": float(failed.group(1)) if failed else 0.0,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
    }


# ------------------------------------------------------------------------------ MX payloads


def mx_body(merchant_id: int, payment_id: int | str) -> dict[str, str]:
    """A full MX-shaped PaymentSuccess notification: the webhook's documented example
    (webhook/payload.py) with the rest of the keys MX sends. wrk, pgbench and the open-loop
    runs all send this body."""
    return {
        **EXAMPLE,
        "merchantId": str(merchant_id),
        "id": str(payment_id),
        "xmid": "5000012345",
        "dba": "Bench Practice",
        "referenceNumber": "522310012345",
        "authorizationCode": "A1B2C3",
        "replayId": "",
        "baseAmount": "181.12",
        "customerNumber": "C00042",
        "customFields": "",
        "fee": "0.00",
    }


def webhook_env(database_url: str, port: int) -> dict[str, str]:
    """The environment of ``python -m webhook`` in the benchmarks (ingest, dashboard live)."""
    return {
        "DATABASE_URL": database_url,
        "WEBHOOK_PORT": str(port),
        # two server processes (one per core), each with half the connections: the webhook
        # holds as many database connections as pgbench has clients
        "WEBHOOK_WORKERS": str(WEBHOOK_PROCESSES),
        "DB_POOL_MIN_SIZE": str(CONCURRENCY // WEBHOOK_PROCESSES),
        "DB_POOL_MAX_SIZE": str(CONCURRENCY // WEBHOOK_PROCESSES),
        # one client address and one token: the per-address limit is off; the per-token limit
        # (in private.ingest_webhook, shared by every process) runs on every request with a
        # rate never reached, so its cost is measured (bench/ingest.pgbench passes the same)
        "WEBHOOK_RATE_PER_TOKEN": "1000000",
        "WEBHOOK_BURST_PER_TOKEN": "1000000",
        "WEBHOOK_RATE_PER_ADDRESS": "0",
    }


def make_practice(
    conn: psycopg.Connection[Any],
    name: str,
    mx_merchant_id: int,
    key: str | None = None,
    secret: str | None = None,
) -> str:
    """A practice with one production merchant account; returns its webhook token."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    _, _, token = localdb.create_merchant(
        conn,
        name=name,
        slug=slug,
        mx_merchant_id=mx_merchant_id,
        environment="production",
        consumer_key=key,
        consumer_secret=secret,
    )
    return token


def run_wrk(target: str, seconds: int, body_template: str, nonce: int) -> dict[str, Any]:
    """wrk at full speed (closed loop) against the webhook, POSTing ``body_template`` with a new
    payment id in place of ``__ID__`` each time; its WRKJSON summary."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONCURRENCY}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "webhook.lua"),
            target,
            "--",
            body_template,
            str(nonce),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    wrk: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    wrk["accepted_per_s"] = (wrk["requests"] - wrk["non2xx"]) / (wrk["duration_us"] / 1e6)
    return wrk


def median(values: list[float]) -> float:
    return pct(values, 50)


def median_round(ratios: list[float]) -> int:
    """The round whose ratio is the median: its subject and ceiling are reported together."""
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    return order[round((len(order) - 1) / 2)]
