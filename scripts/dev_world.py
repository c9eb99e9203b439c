"""The dashboard's demo world, for development tools and tests alike (``make screenshots``,
the dashboard's route and browser tests): two practices fed by the real pipeline (the MX
stand-in's sales through the webhook's procedure and the worker), their staff, patients,
memberships and invoices, and a user of no practice. Users sign in with their e-mail and
``PASSWORD`` through the local platform layer's bcrypt passwords, as a person does.
(tests/support/dashboard.py re-exports these names.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from mxstandin.server import StandinHandle
from scripts.dev_pipeline import create_merchant, drain, ingest, worker_settings
from worker.commands.sync import sync_context
from worker.sync import Account, sync_contracts

PASSWORD = "correct horse battery"


@dataclass
class Practice:
    id: str
    name: str
    token: str
    mx_merchant_id: int
    memberships: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    invoices: list[int] = field(default_factory=list)
    programmes: list[str] = field(default_factory=list)
    contracts: dict[str, int] = field(default_factory=dict)  # patient name -> MX contract id
    merchant_account_id: str = ""


@dataclass
class World:
    """Two practices; users by role name: owner_a, admin_a, staff_a, viewer_a, owner_b,
    staff_b, nobody."""

    a: Practice
    b: Practice
    users: dict[str, str]  # role name -> e-mail
    user_ids: dict[str, str]


TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


SEMA = {"product_name": "Semaglutide 2.5mg", "price": "299"}


LAB = {"product_name": "Lab Panel", "price": "181.12"}
B12 = {"product_name": "Vitamin B12 Injection", "price": "35"}


def _user(conn: psycopg.Connection[Any], email: str) -> str:
    row = conn.execute("insert into auth.users (email) values (%s) returning id", (email,))
    user_id = str(row.fetchone()[0])  # type: ignore[index]
    conn.execute("select auth.local_set_password(%s, %s)", (user_id, PASSWORD))
    return user_id


def add_user(owner_url: str, email: str, practice_id: str | None, role: str = "staff") -> str:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        user_id = _user(conn, email)
        if practice_id:
            conn.execute(
                "insert into app.practice_members (practice_id, user_id, role) values (%s, %s, %s)",
                (practice_id, user_id, role),
            )
    return user_id


async def build_world(owner_url: str, standin: StandinHandle) -> World:
    """Two practices fed by the real pipeline (stand-in sales, the webhook's procedure, the
    worker), five members and an outsider."""
    state = standin.state
    practices: list[Practice] = []
    plans = (
        ("A", ["Alice Archer", "Adam Abbot", "Amy Avery", "Arthur Ames", "Ann Acre"]),
        ("B", ["Bob Baker", "Bea Brown"]),
    )
    for label, names in plans:
        created = state.create_merchant()
        merchant = create_merchant(
            owner_url,
            created["merchant_id"],
            slug=f"clinic-{label.lower()}-{created['merchant_id']}",
            consumer_key=created["consumer_key"],
            consumer_secret=created["consumer_secret"],
        )
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(
                "update app.practices set name = %s, timezone = 'America/Chicago', "
                "auto_apply_suggestions = true where id = %s",
                (f"Clinic {label}", merchant.practice_id),
            )
        practice = Practice(
            str(merchant.practice_id), f"Clinic {label}", merchant.token, merchant.mx_merchant_id
        )
        mid = merchant.mx_merchant_id
        for n, name in enumerate(names):
            customer = state.create_customer(mid, name=name)["id"]
            lines = [TRT, LAB] if n % 2 == 0 else [SEMA]
            # members: recurring billing (issue 14: only recurring evidence makes a member)
            sale = state.create_sale(
                mid,
                customer_id=customer,
                lines=lines,
                contract={"interval": "Monthly"},
                source="Recurring",
            )
            ingest(owner_url, merchant.token, sale["webhook"])
            practice.contracts[name] = sale["contract"]["id"]
            if n == 1:  # a declined renewal: past due
                declined = state.create_sale(mid, contract_id=sale["contract"]["id"], declined=True)
                ingest(owner_url, merchant.token, declined["webhook"])
            if n == 2:  # a partial refund (the payments page's refunds)
                refund = state.create_refund(sale["payment"]["id"], amount="50")
                ingest(owner_url, merchant.token, refund["webhook"])
        if label == "A":  # enough for two pages of 25
            for n in range(20):
                customer = state.create_customer(mid, name=f"Zed Patient {n:02d}")["id"]
                lines = [TRT, B12] if n < 2 else [TRT]
                sale = state.create_sale(mid, customer_id=customer, lines=lines, source="Recurring")
                ingest(owner_url, merchant.token, sale["webhook"])
        practice.merchant_account_id = str(merchant.merchant_account_id)
        practices.append(practice)
    settings = worker_settings(owner_url, standin.base_url, scheduler_enabled=False)
    await drain(settings)
    async with sync_context(settings) as ctx:  # app.contracts and their payments, as MX has them
        for practice in practices:
            account = Account(uuid.UUID(practice.merchant_account_id), practice.mx_merchant_id)
            run = await sync_contracts(ctx, account)
            assert run.status == "succeeded", run

    with psycopg.connect(owner_url, autocommit=True) as conn:
        # A's keyword rule for B12, added after the product was first seen: it waits in
        # Uncategorized with a suggestion (Lab Panel waits without one), as issue 11's queue shows
        conn.execute(
            "insert into app.category_rules (practice_id, keyword, category_id) "
            "select practice_id, 'b12', id from app.categories "
            "where practice_id = %s and name = 'Peptides'",
            (practices[0].id,),
        )

    users: dict[str, str] = {}
    ids: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:6]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for name in ("owner_a", "admin_a", "staff_a", "viewer_a", "owner_b", "staff_b", "nobody"):
            email = f"{name.replace('_', '-')}-{suffix}@example.test"
            users[name] = email
            ids[name] = _user(conn, email)
        a, b = practices
        for user, practice, role in (
            ("owner_a", a, "owner"),
            ("admin_a", a, "admin"),
            ("staff_a", a, "staff"),
            ("viewer_a", a, "viewer"),  # read-only
            ("owner_b", b, "owner"),
            ("staff_b", b, "staff"),
        ):
            conn.execute(
                "insert into app.practice_members (practice_id, user_id, role) values (%s, %s, %s)",
                (practice.id, ids[user], role),
            )
        for practice in practices:
            practice.memberships = [
                str(r[0])
                for r in conn.execute(
                    "select m.id from app.memberships as m join app.patients as p "
                    "on p.id = m.patient_id where m.practice_id = %s order by p.name_key, m.id",
                    (practice.id,),
                ).fetchall()
            ]
            practice.patients = [
                str(r[0])
                for r in conn.execute(
                    "select id from app.patients where practice_id = %s order by name_key",
                    (practice.id,),
                ).fetchall()
            ]
            practice.invoices = [
                int(r[0])
                for r in conn.execute(
                    "select id from app.invoices where practice_id = %s order by id",
                    (practice.id,),
                ).fetchall()
            ]
            practice.programmes = [
                str(r[0])
                for r in conn.execute(
                    "select id from app.categories where practice_id = %s order by sort_order",
                    (practice.id,),
                ).fetchall()
            ]
    return World(practices[0], practices[1], users, ids)
