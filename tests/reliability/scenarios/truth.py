"""What the stand-in holds against what the database recorded: lost and doubled rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from mxstandin.state import StandinState
from tests.reliability.scenarios.traffic import CONNECT_TIMEOUT, event_statuses, scalar
from tests.support.pipeline import query

# ------------------------------------------------------------------ the stand-in's truth


@dataclass
class Truth:
    """What MX holds for the payments a scenario created: the rows the database must have."""

    payment_ids: set[int]
    invoice_lines: int
    customers: int


def standin_truth(state: StandinState, mx_merchant_id: int) -> Truth:
    with state.lock:
        pids = set(state.merchant_payments.get(mx_merchant_id, []))
        lines = 0
        for pid in pids:
            for iid in state.payments[pid].get("invoiceIds") or []:
                lines += len(state.invoices[iid]["purchases"])
        customers = {state.payment_meta[pid]["customer_id"] for pid in pids}
    return Truth(pids, lines, len(customers))


@dataclass
class Ledger:
    """The database compared with the stand-in's truth."""

    statuses: dict[str, int]
    lost: int
    double_applied: int
    problems: list[str] = field(default_factory=list)


DUPLICATE_ROW_CHECKS = {
    "webhook event recorded twice": "select count(*) from (select mx_merchant_id, event_type, "
    "payment_id from app.webhook_events where payment_id is not null group by 1, 2, 3 "
    "having count(*) > 1) as d",
    "patient twice": "select count(*) from (select practice_id, mx_customer_id from app.patients "
    "where mx_customer_id is not null group by 1, 2 having count(*) > 1) as d",
    "membership twice": "select count(*) from (select practice_id, patient_id, category_id "
    "from app.memberships group by 1, 2, 3 having count(*) > 1) as d",
    "invoice line twice": "select count(*) from (select invoice_id, mx_purchase_id "
    "from app.invoice_lines group by 1, 2 having count(*) > 1) as d",
}


def compare_with_truth(db_url: str, truth: Truth, *, dead_allowed: bool) -> Ledger:
    """Lost: an accepted event that is not processed or dead-lettered, or a payment MX holds
    that is neither in app.payments nor dead-lettered. Double: any row beyond MX's truth
    (payments, invoice lines, patients), any row that exists twice by its natural key, any
    processed event whose payment is missing (applied as something else)."""
    statuses = event_statuses(db_url)
    problems: list[str] = []
    lost = statuses.get("queued", 0) + statuses.get("retrying", 0)
    if lost:
        problems.append(f"{lost} events still queued or retrying")
    if not dead_allowed and statuses.get("dead", 0):
        problems.append(f"{statuses['dead']} events dead-lettered")
    db_payments = {
        pid
        for (pid,) in query(db_url, "select id from app.payments", connect_timeout=CONNECT_TIMEOUT)
    }
    dead_payments = {
        pid
        for (pid,) in query(
            db_url,
            "select payment_id from app.webhook_events where status = 'dead'",
            connect_timeout=CONNECT_TIMEOUT,
        )
    }
    missing = truth.payment_ids - db_payments - dead_payments
    if missing:
        problems.append(f"{len(missing)} MX payments neither stored nor dead-lettered")
    lost = max(lost, len(missing))
    processed_without_row = scalar(
        db_url,
        "select count(*) from app.webhook_events as e where e.status = 'processed' "
        "and not exists (select from app.payments as p where p.id = e.payment_id)",
    )
    if processed_without_row:
        problems.append(f"{processed_without_row} processed events without their payment")
        lost += processed_without_row

    double = 0
    extra_payments = len(db_payments - truth.payment_ids)
    if extra_payments:
        problems.append(f"{extra_payments} payments MX does not have")
        double += extra_payments
    if not dead_payments:
        lines = scalar(db_url, "select count(*) from app.invoice_lines")
        patients = scalar(db_url, "select count(*) from app.patients")
        if lines != truth.invoice_lines:
            problems.append(f"invoice lines {lines} != MX {truth.invoice_lines}")
            double += max(0, lines - truth.invoice_lines)
            lost += max(0, truth.invoice_lines - lines)
        if patients != truth.customers:
            problems.append(f"patients {patients} != MX customers {truth.customers}")
            double += max(0, patients - truth.customers)
    for name, sql in DUPLICATE_ROW_CHECKS.items():
        n = scalar(db_url, sql)
        if n:
            problems.append(f"{n} x {name}")
            double += n
    return Ledger(statuses, lost, double, problems)
