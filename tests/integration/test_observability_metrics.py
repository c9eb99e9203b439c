"""Worker metrics: ``python -m worker run`` serves them over HTTP; the counters move as it
processes events against the MX stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mxstandin.server import StandinHandle
from scripts.procs import free_port
from tests.support.merchants import Merchant, onboard
from tests.support.pipeline import drain, ingest, unfinished, worker_settings
from worker import metrics

STANDIN_SEED = 5

ROOT = Path(__file__).resolve().parents[2]
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000066001)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_endpoint_shows_the_worker_counters(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    for _ in range(3):
        created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
        ingest(db_url, merchant.token, created["webhook"])
    # one payment MX does not know: dead-lettered (404)
    missing = dict(created["webhook"])
    missing["id"] = "999999999"
    ingest(db_url, merchant.token, missing)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MX_BASE_URL": standin.base_url,
        "WORKER_POLL_INTERVAL_SECONDS": "0.05",
        "WORKER_METRICS_PORT": str(port),
        "WORKER_METRICS_HOST": "127.0.0.1",
        "WORKER_METRICS_REFRESH_SECONDS": "0.2",
        "ALERT_CHECK_SECONDS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while unfinished(db_url):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker did not finish the events"
            time.sleep(0.1)
        first = scrape(port)
        time.sleep(0.6)  # a scrape asks for fresh queue gauges; they come within the interval
        samples = scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr.decode()

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    assert value("mx_worker_events_total", outcome="processed", event_type="PaymentSuccess") == 3
    assert value("mx_worker_events_total", outcome="dead", event_type="PaymentSuccess") == 1
    assert value("mx_worker_event_seconds_count", outcome="processed") == 3
    assert (
        value("mx_worker_mx_request_seconds_count", method="GET", endpoint="/payment/{id}") or 0
    ) >= 4
    assert (
        value(
            "mx_worker_mx_request_errors_total",
            endpoint="/payment/{id}",
            status="404",
            kind="client_error",
        )
        == 1
    )
    assert value("mx_worker_queue_messages", queue="mx_ingest") == 0
    assert value("mx_worker_queue_messages", queue="mx_ingest_dlq") == 1
    assert value("mx_worker_queue_oldest_message_age_seconds", queue="mx_ingest") == 0
    assert value("mx_worker_reconcile_gaps_total") == 0
    assert (value("mx_worker_queue_metrics_refreshed_timestamp_seconds") or 0) > 0
    assert first  # the endpoint answered while the worker ran


async def test_transient_mx_errors_are_counted_by_kind(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    def errors(status: str, kind: str) -> float:
        return (
            metrics.REGISTRY.get_sample_value(
                "mx_worker_mx_request_errors_total",
                {"endpoint": "/payment/{id}", "status": status, "kind": kind},
            )
            or 0.0
        )

    def events(outcome: str) -> float:
        return (
            metrics.REGISTRY.get_sample_value(
                "mx_worker_events_total", {"outcome": outcome, "event_type": "PaymentSuccess"}
            )
            or 0.0
        )

    before = (errors("503", "server_error"), errors("429", "rate_limited"), events("retrying"))
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    standin.state.add_fault(
        {"path_prefix": "/checkout/v3/payment", "kind": "status", "status": 503, "count": 1}
    )
    standin.state.add_fault(
        {
            "path_prefix": "/checkout/v3/payment",
            "kind": "status",
            "status": 429,
            "retry_after": 1,
            "count": 1,
        }
    )
    ingest(db_url, merchant.token, created["webhook"])
    await drain(worker_settings(db_url, standin.base_url, alert_check_seconds=0))
    after = (errors("503", "server_error"), errors("429", "rate_limited"), events("retrying"))
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == 1
    assert after[2] - before[2] == 2


def test_endpoint_label_is_bounded() -> None:
    assert metrics.endpoint_label("/payment/123456") == "/payment/{id}"
    assert metrics.endpoint_label("/contract/payment") == "/contract/payment"
    assert metrics.endpoint_label("/subscription/-5?x=1") == "/subscription/{id}"
    assert metrics.error_kind(None, TimeoutError()) == "timeout"
    assert metrics.error_kind(None, ConnectionError()) == "transport"
    assert metrics.error_kind(200, None) is None
    assert metrics.error_kind(401, None) == "client_error"
