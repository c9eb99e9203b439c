"""Traffic generator: plays MX Merchant for simulated practices.

For each tick it creates a payment in the stand-in (through the control API, so it works
against an in-process or a subprocess stand-in) and POSTs the MX-shaped webhook to the
merchant's callback URL, with duplicates, reordering, refunds, declines, contract status
changes and the odd non-payment event.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from mxstandin.state import (
    build_non_payment_payload,
    build_webhook_payload,
)

__all__ = [
    "PROGRAMMES",
    "SimMerchant",
    "TrafficReport",
    "build_webhook_payload",
    "provision_merchant",
    "run_traffic",
    "webhook_for_payment",
]

# What patients sign up for: (contract interval, every, lines)
PROGRAMMES: list[tuple[str, str, list[str]]] = [
    ("Monthly", "1 Month", ["Testosterone Cypionate 200mg/ml"]),
    ("Monthly", "1 Month", ["Testosterone Cypionate 200mg/ml", "Enclomiphene 25mg"]),
    ("Monthly", "1 Month", ["Semaglutide 2.5mg"]),
    ("Monthly", "1 Month", ["Tirzepatide 10mg"]),
    ("Weekly", "4 Weeks", ["Tirzepatide 10mg", "BPC-157 5mg"]),
    ("Monthly", "1 Month", ["Sermorelin 9mg", "NAD+ 500mg"]),
    ("Monthly", "1 Month", ["Tadalafil 5mg"]),
    ("Weekly", "4 Weeks", ["Sildenafil 20mg", "Tadalafil 5mg"]),
    ("Monthly", "1 Month", ["BPC-157 5mg"]),
]
ONE_OFF = ["Lab Panel", "Office Visit", "Sildenafil 20mg", "NAD+ 500mg"]


class _HasControlUrl(Protocol):
    control_url: str


@dataclass
class Patient:
    customer_id: int
    name: str
    contract_id: int | None = None
    contract_status: str = "Active"


@dataclass
class SimMerchant:
    """A simulated practice: its MX merchant id, API key pair, and webhook callback URL."""

    merchant_id: int
    consumer_key: str
    consumer_secret: str
    webhook_url: str = ""
    name: str = ""
    timezone_offset: str = "-8:00"
    patients: list[Patient] = field(default_factory=list, repr=False)
    approved_sales: list[int] = field(default_factory=list, repr=False)


@dataclass
class TrafficReport:
    """What the generator sent. ``events`` counts distinct notifications by event type;
    ``posts`` counts HTTP POSTs (duplicates included)."""

    events: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    duplicates_sent: int = 0
    reordered: int = 0
    sales: int = 0
    refunds: int = 0
    declines: int = 0
    non_payment_events: int = 0
    new_patients: int = 0
    contract_status_changes: Counter[str] = field(default_factory=Counter)
    http_status: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    payment_ids: dict[int, list[int]] = field(default_factory=dict)
    contract_ids: dict[int, list[int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def payments_created(self) -> int:
        return sum(len(v) for v in self.payment_ids.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "posts": self.posts,
            "duplicates_sent": self.duplicates_sent,
            "reordered": self.reordered,
            "sales": self.sales,
            "refunds": self.refunds,
            "declines": self.declines,
            "non_payment_events": self.non_payment_events,
            "new_patients": self.new_patients,
            "contract_status_changes": dict(self.contract_status_changes),
            "http_status": {str(k): v for k, v in self.http_status.items()},
            "transport_errors": self.transport_errors,
            "payments_created": self.payments_created,
            "seconds": round(self.seconds, 3),
        }


def _control_url(standin: _HasControlUrl | str) -> str:
    return standin if isinstance(standin, str) else standin.control_url


async def provision_merchant(
    standin: _HasControlUrl | str,
    *,
    name: str | None = None,
    webhook_url: str = "",
    timezone_offset: str = "-8:00",
    client: httpx.AsyncClient | None = None,
) -> SimMerchant:
    """Create a merchant (with fresh API credentials) in the stand-in."""
    body: dict[str, Any] = {"timezone_offset": timezone_offset}
    if name:
        body["name"] = name
    own = client is None
    http = client or httpx.AsyncClient(timeout=10)
    try:
        resp = await http.post(_control_url(standin) + "/merchants", json=body)
        resp.raise_for_status()
        data = resp.json()
    finally:
        if own:
            await http.aclose()
    return SimMerchant(
        merchant_id=int(data["merchant_id"]),
        consumer_key=data["consumer_key"],
        consumer_secret=data["consumer_secret"],
        webhook_url=webhook_url,
        name=data["name"],
        timezone_offset=timezone_offset,
    )


async def webhook_for_payment(
    standin: _HasControlUrl | str,
    payment_id: int,
    event_type: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """The MX webhook payload for one stand-in payment (via the control API). In-process,
    ``handle.state.webhook_for(payment_id)`` gives the same without HTTP."""
    own = client is None
    http = client or httpx.AsyncClient(timeout=10)
    try:
        params = {"event_type": event_type} if event_type else None
        resp = await http.get(
            f"{_control_url(standin)}/payments/{payment_id}/webhook", params=params
        )
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result
    finally:
        if own:
            await http.aclose()


class _Generator:
    def __init__(
        self,
        control_url: str,
        http: httpx.AsyncClient,
        rng: random.Random,
        report: TrafficReport,
        webhook_url_for: Callable[[SimMerchant], str],
        duplicate_rate: float,
        reorder_rate: float,
        refund_rate: float,
        decline_rate: float,
        churn_rate: float,
        non_payment_rate: float,
    ) -> None:
        self.control = control_url
        self.http = http
        self.rng = rng
        self.report = report
        self.webhook_url_for = webhook_url_for
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.refund_rate = refund_rate
        self.decline_rate = decline_rate
        self.churn_rate = churn_rate
        self.non_payment_rate = non_payment_rate
        self.held: list[tuple[int, SimMerchant, dict[str, Any]]] = []  # (release_after, ...)
        self.tick_no = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def control_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(self.control + path, json=body)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def tick(self, merchant: SimMerchant) -> None:
        self.tick_no += 1
        roll = self.rng.random()
        payload: dict[str, Any] | None
        if roll < self.non_payment_rate:
            payload = build_non_payment_payload(
                {"id": merchant.merchant_id, "dba": merchant.name, "xmid": ""},
                self.rng.choice(["BatchClosed", "Deposit"]),
                self.rng,
            )
            self.report.non_payment_events += 1
        elif roll < self.non_payment_rate + self.refund_rate and merchant.approved_sales:
            payload = await self.refund(merchant)
        else:
            payload = await self.sale(merchant)
        await self.maybe_churn(merchant)
        if payload is not None:
            self.dispatch(merchant, payload)
        self.release_held(force=False)

    async def refund(self, merchant: SimMerchant) -> dict[str, Any] | None:
        pid = merchant.approved_sales.pop(self.rng.randrange(len(merchant.approved_sales)))
        body: dict[str, Any] = {"payment_id": pid}
        try:
            result = await self.control_post("/refunds", body)
        except httpx.HTTPStatusError:
            return None
        self.report.refunds += 1
        self.report.payment_ids.setdefault(merchant.merchant_id, []).append(
            int(result["payment"]["id"])
        )
        webhook: dict[str, Any] = result["webhook"]
        return webhook

    async def sale(self, merchant: SimMerchant) -> dict[str, Any]:
        declined = self.rng.random() < self.decline_rate
        active = [p for p in merchant.patients if p.contract_id and p.contract_status == "Active"]
        body: dict[str, Any] = {"merchant_id": merchant.merchant_id, "declined": declined}
        new_patient = not active or self.rng.random() < 0.25
        patient: Patient | None = None
        if new_patient:
            customer = await self.control_post("/customers", {"merchant_id": merchant.merchant_id})
            patient = Patient(int(customer["id"]), str(customer["name"]))
            merchant.patients.append(patient)
            self.report.new_patients += 1
            body["customer_id"] = patient.customer_id
            if self.rng.random() < 0.8:
                interval, every, names = self.rng.choice(PROGRAMMES)
                body["contract"] = {"interval": interval, "every": every}
                body["lines"] = [{"product_name": n} for n in names]
                body["source"] = self.rng.choice(["QuickPay", "API", "Customer"])
            else:
                names = self.rng.sample(ONE_OFF, self.rng.randint(1, 2))
                body["lines"] = [{"product_name": n} for n in names]
                body["source"] = self.rng.choice(["QuickPay", "API", "Invoice", "Terminal"])
        else:
            patient = self.rng.choice(active)
            body["contract_id"] = patient.contract_id
            body["source"] = "Recurring"
            if self.rng.random() < 0.15:
                # an add-on this month: programme plus a one-off product on one invoice
                body["extra_lines"] = [{"product_name": self.rng.choice(ONE_OFF)}]
        result = await self.control_post("/sales", body)
        payment = result["payment"]
        if result.get("contract") and patient is not None and patient.contract_id is None:
            patient.contract_id = int(result["contract"]["id"])
            self.report.contract_ids.setdefault(merchant.merchant_id, []).append(
                patient.contract_id
            )
        self.report.payment_ids.setdefault(merchant.merchant_id, []).append(int(payment["id"]))
        if declined:
            self.report.declines += 1
        else:
            self.report.sales += 1
            merchant.approved_sales.append(int(payment["id"]))
        webhook: dict[str, Any] = result["webhook"]
        if self.rng.random() < 0.2:
            # older payload style: null instead of ""
            webhook = {k: (None if v == "" else v) for k, v in webhook.items()}
        return webhook

    async def maybe_churn(self, merchant: SimMerchant) -> None:
        if self.rng.random() >= self.churn_rate:
            return
        candidates = [
            p for p in merchant.patients if p.contract_id and p.contract_status == "Active"
        ]
        if not candidates:
            return
        patient = self.rng.choice(candidates)
        status = self.rng.choice(["Inactive", "Cancelled", "Inactive", "Cancelled", "Deleted"])
        await self.control_post(f"/contracts/{patient.contract_id}/status", {"status": status})
        patient.contract_status = status
        self.report.contract_status_changes[status] += 1

    def dispatch(self, merchant: SimMerchant, payload: dict[str, Any]) -> None:
        self.report.events[str(payload.get("eventType"))] += 1
        if self.rng.random() < self.reorder_rate:
            self.held.append((self.tick_no + self.rng.randint(1, 4), merchant, payload))
            self.report.reordered += 1
            return
        self._send_later(merchant, payload)

    def release_held(self, *, force: bool) -> None:
        keep: list[tuple[int, SimMerchant, dict[str, Any]]] = []
        for release_after, merchant, payload in self.held:
            if force or self.tick_no >= release_after:
                self._send_later(merchant, payload)
            else:
                keep.append((release_after, merchant, payload))
        self.held = keep

    def _send_later(self, merchant: SimMerchant, payload: dict[str, Any]) -> None:
        copies = 2 if self.rng.random() < self.duplicate_rate else 1
        if copies == 2:
            self.report.duplicates_sent += 1
        url = self.webhook_url_for(merchant)
        task = asyncio.create_task(self._post(url, payload, copies))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, url: str, payload: dict[str, Any], copies: int) -> None:
        for _ in range(copies):
            self.report.posts += 1
            try:
                resp = await self.http.post(url, json=payload)
            except httpx.HTTPError:
                self.report.transport_errors += 1
                continue
            self.report.http_status[resp.status_code] += 1

    async def drain(self) -> None:
        self.release_held(force=True)
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


async def run_traffic(
    standin: _HasControlUrl | str,
    merchants: list[SimMerchant],
    seconds: float,
    rate_per_second: float,
    seed: int,
    webhook_url_for: Callable[[SimMerchant], str] | None = None,
    duplicate_rate: float = 0.1,
    reorder_rate: float = 0.1,
    refund_rate: float = 0.03,
    decline_rate: float = 0.05,
    churn_rate: float = 0.02,
    non_payment_rate: float = 0.02,
    client: httpx.AsyncClient | None = None,
) -> TrafficReport:
    """Generate ``rate_per_second`` events for ``seconds`` across ``merchants``.

    ``standin`` is a :class:`StandinHandle` (or anything with ``control_url``, or the control
    URL itself). ``webhook_url_for`` defaults to each merchant's ``webhook_url``. Returns when
    every webhook (held-back ones included) has been POSTed.
    """
    if not merchants:
        raise ValueError("need at least one merchant")
    rng = random.Random(seed)
    report = TrafficReport()
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), limits=httpx.Limits(max_connections=64)
    )
    gen = _Generator(
        _control_url(standin),
        http,
        rng,
        report,
        webhook_url_for or (lambda m: m.webhook_url),
        duplicate_rate,
        reorder_rate,
        refund_rate,
        decline_rate,
        churn_rate,
        non_payment_rate,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    total = max(1, round(seconds * rate_per_second))
    interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    try:
        for i in range(total):
            due = started + i * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await gen.tick(rng.choice(merchants))
        await gen.drain()
    finally:
        report.seconds = loop.time() - started
        if own:
            await http.aclose()
    return report
