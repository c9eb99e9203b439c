"""The worker against the MX stand-in and a real Postgres built from the migrations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from mxstandin.server import StandinHandle
from tests.conftest import Merchant, onboard
from tests.pipeline import drain, ingest, query, unfinished, worker_settings

ROOT = Path(__file__).resolve().parent.parent
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}
BPC = {"product_name": "BPC-157 5mg", "price": "31.12"}


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    return onboard(db_url, standin, 1000012345)


def sale(standin: StandinHandle, merchant: Merchant, **kwargs: object) -> dict[str, object]:
    return standin.state.create_sale(merchant.mx_merchant_id, **kwargs)  # type: ignore[arg-type]


async def test_sale_with_two_lines_lands_everywhere(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT, BPC], source="Recurring")
    payment_id = created["payment"]["id"]  # type: ignore[index]
    assert ingest(db_url, merchant.token, created["webhook"])[0] == "queued"  # type: ignore[arg-type]

    await drain(worker_settings(db_url, standin.base_url))

    [(status, amount)] = query(
        db_url, "select status, amount from app.payments where id = %s", (payment_id,)
    )
    assert status == "Approved"
    assert str(amount) == "181.12"
    lines = query(db_url, "select product_name from app.invoice_lines order by line_no")
    assert [name for (name,) in lines] == [TRT["product_name"], BPC["product_name"]]
    [(event_status, attempts)] = query(db_url, "select status, attempts from app.webhook_events")
    assert (event_status, attempts) == ("processed", 1)
    memberships = query(
        db_url,
        "select status, started_on is not null, last_paid_at is not null from app.memberships",
    )
    assert memberships
    assert all(row == ("active", True, True) for row in memberships)
    # the message was archived in the same transaction: nothing left in the queue
    assert query(db_url, "select queue_length from private.queue_metrics('mx_ingest')") == [(0,)]


async def test_transient_faults_are_retried_then_processed(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT])
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
    ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]

    await drain(worker_settings(db_url, standin.base_url))

    [(status, attempts, last_error)] = query(
        db_url, "select status, attempts, last_error from app.webhook_events"
    )
    assert (status, attempts, last_error) == ("processed", 3, None)


async def test_hanging_mx_is_a_transient_failure(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT])
    standin.state.add_fault({"path_prefix": "/checkout/v3/payment", "kind": "hang", "count": 1})
    ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]

    await drain(worker_settings(db_url, standin.base_url, mx_total_timeout_seconds=1))

    [(status, attempts)] = query(db_url, "select status, attempts from app.webhook_events")
    assert (status, attempts) == ("processed", 2)


async def test_unknown_payment_goes_to_dead_letters(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT])
    webhook = dict(created["webhook"])  # type: ignore[call-overload]
    webhook["id"] = "999999999"
    ingest(db_url, merchant.token, webhook)

    await drain(worker_settings(db_url, standin.base_url))

    [(status, last_error)] = query(db_url, "select status, last_error from app.webhook_events")
    assert status == "dead"
    assert "not_found" in last_error
    assert query(db_url, "select queue_length from private.queue_metrics('mx_ingest_dlq')") == [
        (1,)
    ]
    assert query(db_url, "select count(*) from app.payments") == [(0,)]


async def test_bad_credentials_dead_letter_and_flag_the_merchant(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT])
    standin.state.add_fault({"path_prefix": "/checkout/v3/payment", "kind": "bad_credentials"})
    ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]

    await drain(worker_settings(db_url, standin.base_url))

    [(status, last_error)] = query(db_url, "select status, last_error from app.webhook_events")
    assert status == "dead"
    assert "invalid_credentials" in last_error
    [(failed_at,)] = query(db_url, "select credentials_failed_at from app.merchant_accounts")
    assert failed_at is not None


async def test_attempts_are_counted_by_the_project_and_exhausted(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT])
    standin.state.add_fault(
        {"path_prefix": "/checkout/v3/payment", "kind": "status", "status": 500}
    )
    ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]

    await drain(worker_settings(db_url, standin.base_url, worker_max_attempts=3))

    [(status, attempts, last_error)] = query(
        db_url, "select status, attempts, last_error from app.webhook_events"
    )
    assert (status, attempts) == ("dead", 3)
    assert last_error.startswith("attempts exhausted (3)")


async def test_refund_before_its_sale_converges(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    created = sale(standin, merchant, lines=[TRT, BPC])
    sale_id = created["payment"]["id"]  # type: ignore[index]
    refund = standin.state.create_refund(sale_id, amount="31.12")

    ingest(db_url, merchant.token, refund["webhook"])
    await drain(worker_settings(db_url, standin.base_url))
    ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]
    await drain(worker_settings(db_url, standin.base_url))

    rows = query(
        db_url,
        "select id, type, original_payment_id, refunded_amount from app.payments order by id",
    )
    assert rows == [
        (sale_id, "Sale", None, Decimal("31.12")),
        (refund["payment"]["id"], "Return", sale_id, Decimal("0")),
    ]
    # the refund recorded no status change: the membership is still active
    assert {s for (s,) in query(db_url, "select status from app.memberships")} == {"active"}


async def test_failure_notice_after_a_later_success_does_not_win(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    first = sale(
        standin,
        merchant,
        lines=[TRT],
        source="Recurring",
        contract={"interval": "Monthly", "every": "1 Month"},
    )
    contract_id = first["contract"]["id"]  # type: ignore[index]
    declined = sale(
        standin, merchant, contract_id=contract_id, declined=True, created="2030-01-01T10:00:00Z"
    )
    recovered = sale(standin, merchant, contract_id=contract_id, created="2030-01-03T10:00:00Z")

    # delivered newest first, the decline last
    for created in (recovered, first, declined):
        ingest(db_url, merchant.token, created["webhook"])  # type: ignore[arg-type]
        await drain(worker_settings(db_url, standin.base_url))

    [(status, last_paid)] = query(
        db_url, "select status, last_paid_at::date::text from app.memberships"
    )
    assert (status, last_paid) == ("active", "2030-01-03")


async def test_two_workers_apply_each_event_once(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    standin.state.configure(latency_ms=20)
    for _ in range(40):
        ingest(db_url, merchant.token, sale(standin, merchant, lines=[TRT])["webhook"])  # type: ignore[arg-type]

    consumers = await drain(
        worker_settings(db_url, standin.base_url, worker_concurrency=4), workers=2
    )

    assert query(
        db_url, "select status, attempts, count(*) from app.webhook_events group by 1, 2"
    ) == [("processed", 1, 40)]
    assert query(db_url, "select count(*) from app.payments") == [(40,)]
    assert all(c.counts["processed"] > 0 for c in consumers), [c.counts for c in consumers]


def _worker_process(db_url: str, base_url: str, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MX_BASE_URL": base_url,
        "WORKER_POLL_INTERVAL_SECONDS": "0.05",
        "MX_TOTAL_TIMEOUT_SECONDS": "2",
        "WORKER_VISIBILITY_SECONDS": "4",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=environment, stderr=subprocess.PIPE
    )


def test_sigterm_stops_the_worker_cleanly(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    standin.state.configure(latency_ms=300)
    for _ in range(6):
        ingest(db_url, merchant.token, sale(standin, merchant, lines=[TRT])["webhook"])  # type: ignore[arg-type]
    proc = _worker_process(db_url, standin.base_url)
    # SIGTERM once the worker is working (has claimed an event): a fixed sleep raced the
    # interpreter's start-up on a loaded machine (the signal came before the handler)
    deadline = time.monotonic() + 30
    while query(db_url, "select count(*) from app.webhook_events where attempts > 0") == [(0,)]:
        assert time.monotonic() < deadline, "the worker claimed nothing in 30 s"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr.decode()
    # whatever was in flight was finished: no event is stuck half-done
    statuses = {s for (s,) in query(db_url, "select status from app.webhook_events")}
    assert statuses <= {"processed", "queued"}


def test_worker_killed_mid_batch_is_redelivered_and_applied_once(
    db_url: str, standin: StandinHandle, merchant: Merchant
) -> None:
    standin.state.configure(latency_ms=100)
    for _ in range(30):
        ingest(db_url, merchant.token, sale(standin, merchant, lines=[TRT, BPC])["webhook"])  # type: ignore[arg-type]
    proc = _worker_process(db_url, standin.base_url, WORKER_CONCURRENCY="8")
    deadline = time.monotonic() + 20
    while (
        query(db_url, "select count(*) from app.webhook_events where status = 'processed'")[0][0]
        < 5
    ):
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: nothing is finished or released
    proc.wait()
    assert unfinished(db_url) > 0, "the kill should leave work in flight"

    proc = _worker_process(db_url, standin.base_url)
    deadline = time.monotonic() + 40
    while unfinished(db_url):
        assert time.monotonic() < deadline, "redelivered events were not processed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)

    assert query(db_url, "select status, count(*) from app.webhook_events group by 1") == [
        ("processed", 30)
    ]
    assert query(db_url, "select count(*) from app.payments") == [(30,)]
    assert query(db_url, "select count(*) from app.invoice_lines") == [(60,)]
    # some events were worked twice (attempts 2), yet every row exists once
    assert query(db_url, "select count(*) > 0 from app.webhook_events where attempts > 1") == [
        (True,)
    ]
