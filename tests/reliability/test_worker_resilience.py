"""The worker across a Postgres restart, and order/duplication convergence (property test)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mxstandin.server import StandinHandle, start_standin
from scripts import localdb
from tests.support.merchants import create_merchant
from tests.support.pipeline import drain, ingest, query, unfinished, worker_settings
from tests.support.private_postgres import private_postgres
from worker.consumer import Consumer

TRT = {"product_name": "Testosterone Cypionate 200mg/ml"}
SEMA = {"product_name": "Semaglutide 2.5mg"}
BPC = {"product_name": "BPC-157 5mg"}


@pytest.fixture(scope="module")
def scenario() -> Iterator[tuple[StandinHandle, dict[str, Any], list[dict[str, Any]]]]:
    """A merchant's history in the stand-in: recurring sales, a decline, a recovery, a refund,
    a one-off, a settlement; and the webhooks MX sent for it, in order."""
    standin = start_standin(seed=3)
    state = standin.state
    merchant = state.create_merchant(merchant_id=1000077777)
    mid = merchant["merchant_id"]
    webhooks: list[dict[str, Any]] = []

    def sale(**kwargs: Any) -> dict[str, Any]:
        created = state.create_sale(mid, **kwargs)
        webhooks.append(created["webhook"])
        return created

    ann = state.create_customer(mid, name="Ann Lee")["id"]
    bob = state.create_customer(mid, name="Bob Hill")["id"]
    first = sale(
        customer_id=ann,
        lines=[TRT, BPC],
        contract={"interval": "Monthly", "every": "1 Month"},
        created="2030-01-01T09:00:00Z",
    )
    contract = first["contract"]["id"]
    sale(contract_id=contract, declined=True, created="2030-02-01T09:00:00Z")
    sale(contract_id=contract, created="2030-02-03T09:00:00Z")
    one_off = sale(customer_id=bob, lines=[SEMA], source="QuickPay", created="2030-01-15T12:00:00Z")
    sale(
        customer_id=bob, lines=[SEMA], source="QuickPay", created="2030-01-15T12:00:00Z"
    )  # same second
    refund = state.create_refund(
        one_off["payment"]["id"], amount="50", created="2030-01-20T12:00:00Z"
    )
    webhooks.append(refund["webhook"])
    state.set_payment_status(first["payment"]["id"], "Settled")
    yield standin, merchant, webhooks
    standin.stop()


SNAPSHOT_QUERIES = {
    "payments": "select id, status, type, amount, refunded_amount, original_payment_id, "
    "mx_created_at from app.payments order by id",
    "invoices": "select id, invoice_number, status, total_amount from app.invoices order by id",
    "lines": "select l.invoice_id, l.line_no, l.product_name, c.name from app.invoice_lines as l "
    "join app.categories as c on c.id = l.category_id order by 1, 2",
    "patients": "select mx_customer_id, name from app.patients order by name",
    "memberships": "select pt.name, c.name, m.status, m.started_on, m.last_paid_at, m.amount, "
    "m.product_names from app.memberships as m join app.patients as pt on pt.id = m.patient_id "
    "join app.categories as c on c.id = m.category_id order by 1, 2",
}


def snapshot(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: query(db_url, sql) for name, sql in SNAPSHOT_QUERIES.items()}


def replay(
    template_db: str, standin: StandinHandle, merchant: dict[str, Any], stream: list[dict[str, Any]]
) -> dict[str, Any]:
    name = f"mx_prop_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    db_url = localdb.create_database(name, template=template_db)
    try:
        account = create_merchant(
            db_url,
            merchant["merchant_id"],
            consumer_key=merchant["consumer_key"],
            consumer_secret=merchant["consumer_secret"],
        )
        for payload in stream:
            ingest(db_url, account.token, payload)
        asyncio.run(drain(worker_settings(db_url, standin.base_url, worker_concurrency=4)))
        return snapshot(db_url)
    finally:
        localdb.drop_database(name)


@pytest.fixture(scope="module")
def in_order(
    template_db: str, scenario: tuple[StandinHandle, dict[str, Any], list[dict[str, Any]]]
) -> dict[str, Any]:
    standin, merchant, webhooks = scenario
    state = replay(template_db, standin, merchant, webhooks)
    # the scenario landed
    assert len(state["payments"]) == 6, state
    assert state["memberships"], state
    return state


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_duplication_and_reordering_converges(
    data: st.DataObject,
    template_db: str,
    scenario: tuple[StandinHandle, dict[str, Any], list[dict[str, Any]]],
    in_order: dict[str, Any],
) -> None:
    standin, merchant, webhooks = scenario
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(webhooks), max_size=len(webhooks)))
    stream = [payload for payload, n in zip(webhooks, copies, strict=True) for _ in range(n)]
    stream = data.draw(st.permutations(stream))
    assert replay(template_db, standin, merchant, stream) == in_order


async def test_worker_survives_a_postgres_restart() -> None:
    standin = start_standin(seed=5)
    try:
        with private_postgres() as cluster:
            db_url = cluster.project_database()
            created = standin.state.create_merchant(merchant_id=1000088888)
            account = create_merchant(
                db_url,
                created["merchant_id"],
                consumer_key=created["consumer_key"],
                consumer_secret=created["consumer_secret"],
            )

            def burst(n: int) -> None:
                for _ in range(n):
                    ingest(
                        db_url,
                        account.token,
                        standin.state.create_sale(created["merchant_id"], lines=[TRT])["webhook"],
                    )

            standin.state.configure(latency_ms=30)
            burst(20)
            consumer = Consumer(worker_settings(db_url, standin.base_url, worker_concurrency=4))
            task = asyncio.create_task(consumer.run())
            while await asyncio.to_thread(
                query, db_url, "select count(*) from app.webhook_events where status = 'processed'"
            ) < [(3,)]:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(cluster.restart)
            burst(20)
            deadline = asyncio.get_running_loop().time() + 60
            while await asyncio.to_thread(unfinished, db_url):
                assert asyncio.get_running_loop().time() < deadline, "worker did not recover"
                assert not task.done(), "the worker died instead of reconnecting"
                await asyncio.sleep(0.2)
            consumer.request_stop()
            await task
            assert query(db_url, "select status, count(*) from app.webhook_events group by 1") == [
                ("processed", 40)
            ]
            assert query(db_url, "select count(*) from app.payments") == [(40,)]
            with psycopg.connect(db_url) as conn:  # a fresh connection works as before
                assert conn.execute("select 1").fetchone() == (1,)
    finally:
        standin.stop()
