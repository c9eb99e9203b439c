"""``legacy import`` from a legacy database (a second database on the same server)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mxstandin.server import StandinHandle
from scripts import localdb
from tests.support.merchants import Merchant, create_merchant
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.__main__ import main

STANDIN_SEED = 5

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_schema.sql"
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}
MX_ID = 1000012345
NEW_MX_ID = 1000099999


@pytest.fixture
def legacy_url() -> Iterator[str]:
    name = f"mx_legacy_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = localdb.create_database(name)
    with psycopg.connect(url) as conn:
        conn.execute(FIXTURE.read_text())  # type: ignore[arg-type]  # a trusted fixture
    yield url
    localdb.drop_database(name)


@pytest.fixture
def merchant(db_url: str, standin: StandinHandle) -> Merchant:
    created = standin.state.create_merchant(merchant_id=MX_ID)
    return create_merchant(
        db_url,
        MX_ID,
        slug="bay",
        consumer_key=created["consumer_key"],
        consumer_secret=created["consumer_secret"],
    )


def legacy_import(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["legacy", "import", "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    result["by_kind"] = {row["kind"]: row for row in result["counts"]}
    return result


def changes(result: dict[str, Any]) -> int:
    return sum(row[o] for row in result["counts"] for o in ("created", "updated", "pending"))


def snapshot(db_url: str) -> list[tuple[Any, ...]]:
    return query(
        db_url,
        "select (select count(*) from app.merchant_accounts), (select count(*) from "
        "app.categories), "
        "(select count(*) from app.products where category_confirmed), "
        "(select count(*) from app.legacy_workflow_pending), "
        "(select count(*) from app.memberships where referral_source is not null), "
        "(select count(*) from app.invoices where data_sent_status <> 'pending')",
    )


async def test_legacy_import_twice_then_pending_rows_apply(
    db_url: str,
    legacy_url: str,
    standin: StandinHandle,
    merchant: Merchant,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    settings = worker_settings(db_url, standin.base_url)
    # the new database already has Jane's TRT membership and invoice
    jane = standin.state.create_customer(MX_ID, name="Jane Doe")
    jane_sale = standin.state.create_sale(
        MX_ID, customer_id=jane["id"], lines=[TRT], source="Recurring"
    )
    ingest(db_url, merchant.token, jane_sale["webhook"])
    await drain(settings)
    jane_invoice = jane_sale["invoice"]["id"]
    # John's sale exists at MX but has not reached the new database yet
    john = standin.state.create_customer(MX_ID, name="John Roe")
    john_sale = standin.state.create_sale(
        MX_ID, customer_id=john["id"], lines=[TRT], source="Recurring"
    )
    john_invoice = john_sale["invoice"]["id"]
    new_practice = query(
        db_url, "insert into app.practices (name, slug) values ('North', 'north') returning id"
    )

    with psycopg.connect(legacy_url) as conn:
        # legacy declares integer; the stand-in's invoice ids are larger than real MX ones
        conn.execute("alter table invoices alter column mx_invoice_id type bigint")
        conn.execute(
            "insert into mx_merchant_configs (merchant_id, consumer_key, consumer_secret, "
            "environment, is_active, updated_at) "
            "values (%s, 'old-key', 'old-secret', 'sandbox', false, now() - interval '1 year'), "
            "(%s, %s, %s, 'sandbox', true, now()), "
            "(%s, 'north-key', 'north-secret', 'production', true, now()), "
            "(424242, 'k', 's', 'production', true, now())",
            (MX_ID, MX_ID, merchant.consumer_key, merchant.consumer_secret, NEW_MX_ID),
        )
        conn.execute(
            "insert into product_categories (merchant_id, product_name, category) values "
            "(%s, %s, 'TRT'), (%s, 'NAD+ Injection', 'Longevity'), (%s, 'Mystery', "
            "'Uncategorized')",
            (MX_ID, TRT["product_name"], MX_ID, MX_ID),
        )
        conn.execute(
            "insert into invoices (mx_invoice_id, merchant_id, customer_id, data_sent_status, "
            "data_sent_at, "
            "data_sent_notes, ordered_by_provider_at) values "
            "(%s, %s, %s, 'yes', '2026-01-02 10:00+00', 'faxed to pharmacy', '2026-01-01 "
            "09:00+00'), "
            "(%s, %s, %s, 'no', '2026-01-03 10:00+00', null, null)",
            (jane_invoice, MX_ID, jane["id"], john_invoice, MX_ID, john["id"]),
        )
        # Jane: an older transaction with other values, and the newest one that counts
        conn.execute(
            "insert into transactions (mx_payment_id, merchant_id, customer_name, product_name, "
            "product_category, "
            "source, transaction_date, membership_status, fulfillment_type, referral_source, "
            "google_review_submitted) values "
            "(1, %s, 'Jane Doe', %s, 'TRT', 'Recurring', '2025-01-01', 'paused', 'in_office', "
            "'online', false), "
            "(2, %s, 'jane doe ', %s, 'TRT', 'Recurring', '2025-06-01', 'active', 'mail_out', "
            "'refer_a_friend', true), "
            "(3, %s, 'John Roe', %s, 'TRT', 'Recurring', '2025-06-01', 'active', 'in_office', "
            "'online', true), "
            "(4, %s, 'John Roe', %s, 'TRT', 'QuickPay', '2025-07-01', 'canceled', 'mail_out', "
            "'other', false)",
            (MX_ID, TRT["product_name"]) * 4,
        )
    practice_map = tmp_path / "map.json"
    practice_map.write_text(json.dumps({str(NEW_MX_ID): "north"}))
    before = snapshot(db_url)

    dry = legacy_import(
        capsys, "--from", legacy_url, "--practice-map", str(practice_map), "--dry-run"
    )
    assert dry["dry_run"] is True
    assert snapshot(db_url) == before  # nothing changed
    k = dry["by_kind"]
    assert (k["merchants"]["created"], k["merchants"]["updated"], k["merchants"]["skipped"]) == (
        1,
        0,
        1,
    )
    assert k["merchants"]["unchanged"] == 1
    assert k["programmes"]["created"] == 1
    assert k["product_categories"]["updated"] == 1
    assert k["product_categories"]["created"] == 1
    assert k["product_categories"]["skipped"] == 1
    assert (k["memberships"]["updated"], k["memberships"]["pending"]) == (1, 1)
    assert (k["invoices"]["updated"], k["invoices"]["pending"]) == (1, 1)

    first = legacy_import(capsys, "--from", legacy_url, "--practice-map", str(practice_map))
    assert first["counts"] == dry["counts"]
    [(referral, fulfillment, review, status)] = query(
        db_url,
        "select m.referral_source, m.fulfillment, m.google_review_submitted, m.status from "
        "app.memberships as m "
        "inner join app.patients as p on p.id = m.patient_id where p.name = 'Jane Doe'",
    )
    assert (referral, fulfillment, review, status) == ("refer_a_friend", "mail_out", True, "active")
    [(sent, notes)] = query(
        db_url,
        "select data_sent_status, data_sent_notes from app.invoices where id = %s",
        (jane_invoice,),
    )
    assert (sent, notes) == ("yes", "faxed to pharmacy")
    [(env, active, practice_id)] = query(
        db_url,
        "select environment, is_active, practice_id from app.merchant_accounts where "
        "mx_merchant_id = %s",
        (NEW_MX_ID,),
    )
    assert (env, active, practice_id) == ("production", True, new_practice[0][0])
    assert query(
        db_url,
        "select c.name from app.categories as c join app.products as p on p.category_id = c.id "
        "where p.name = 'NAD+ Injection'",
    ) == [("Longevity",)]

    second = legacy_import(capsys, "--from", legacy_url, "--practice-map", str(practice_map))
    after_first = snapshot(db_url)
    assert changes(second) == 0, second["counts"]
    assert second["by_kind"]["memberships"]["still_pending"] == 1
    assert snapshot(db_url) == after_first

    # John's sale arrives: the staged fields land on the new membership and invoice
    ingest(db_url, merchant.token, john_sale["webhook"])
    await drain(settings)
    [(referral, review)] = query(
        db_url,
        "select m.referral_source, m.google_review_submitted from app.memberships as m "
        "inner join app.patients as p on p.id = m.patient_id where p.name = 'John Roe'",
    )
    assert (referral, review) == ("online", True)
    assert query(
        db_url, "select data_sent_status from app.invoices where id = %s", (john_invoice,)
    ) == [("no",)]
    assert query(
        db_url, "select count(*) from app.legacy_workflow_pending where applied_at is null"
    ) == [(0,)]

    third = legacy_import(capsys, "--from", legacy_url, "--practice-map", str(practice_map))
    assert changes(third) == 0, third["counts"]


def test_legacy_import_errors(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("LEGACY_DATABASE_URL", raising=False)
    assert main(["legacy", "import"]) == 2
    assert "LEGACY_DATABASE_URL" in capsys.readouterr().err
    bad_map = tmp_path / "map.json"
    bad_map.write_text("[1, 2]")
    assert main(["legacy", "import", "--from", db_url, "--practice-map", str(bad_map)]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["legacy", "import", "--from", db_url]) == 2  # not a legacy database
    assert capsys.readouterr().err.startswith("error: legacy database:")
