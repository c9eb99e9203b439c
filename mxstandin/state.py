"""In-memory state of the MX Merchant stand-in.

Objects are stored as the JSON MX would return (camelCase keys, money as trimmed decimal
strings, ``""`` for missing values), plus a little bookkeeping. Every public method takes the
state lock, so the HTTP server thread and test code may use one instance concurrently.
"""

from __future__ import annotations

import copy
import itertools
import random
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

API_PREFIX = "/checkout/v3"

PRODUCTS: dict[str, Decimal] = {
    "Testosterone Cypionate 200mg/ml": Decimal("149"),
    "Semaglutide 2.5mg": Decimal("299"),
    "Tirzepatide 10mg": Decimal("449.5"),
    "BPC-157 5mg": Decimal("129.99"),
    "Sermorelin 9mg": Decimal("189"),
    "Sildenafil 20mg": Decimal("45.25"),
    "Tadalafil 5mg": Decimal("39.9"),
    "Enclomiphene 25mg": Decimal("99"),
    "NAD+ 500mg": Decimal("220"),
    "Lab Panel": Decimal("181.12"),
    "Office Visit": Decimal("75"),
}
PRODUCT_IDS: dict[str, int] = {name: 91000 + i for i, name in enumerate(PRODUCTS)}

FIRST_NAMES = [
    "Jane", "John", "Maria", "David", "Sarah", "Michael", "Laura", "Robert", "Emily", "James",
    "Olivia", "Daniel", "Sophia", "Chris", "Ava", "Mark", "Grace", "Kevin", "Chloe", "Brian",
]  # fmt: skip
LAST_NAMES = [
    "Doe", "Smith", "Garcia", "Nguyen", "Johnson", "Brown", "Lee", "Martinez", "Davis", "Lopez",
    "Wilson", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Hill", "Green", "Baker",
]  # fmt: skip
CARD_TYPES = ["Visa", "MasterCard", "Discover", "AmericanExpress"]
DECLINE_REASONS = [
    (51, "Insufficient funds"),
    (5, "Do not honor"),
    (54, "Expired card"),
    (61, "Exceeds withdrawal limit"),
]
CONTRACT_STATUSES = ("Active", "Inactive", "Cancelled", "Completed", "Deleted")


class StandinError(Exception):
    """An MX-shaped error: ``status`` plus the MX error body."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        details: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "errorCode": error_code,
            "message": message,
            "details": details or [],
            "responseCode": str(status),
        }
        self.headers = headers or {}


def not_found(what: str) -> StandinError:
    return StandinError(404, "NotFound", f"{what} was not found")


# ------------------------------------------------------------------------------------------
# formatting (the MX quirks)
# ------------------------------------------------------------------------------------------


def fmt_money(value: Decimal | int | str) -> str:
    """``Decimal("260.00")`` -> ``"260"``, ``"181.120"`` -> ``"181.12"``, ``-10.50`` ->
    ``"-10.5"``."""
    d = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_webhook_money(value: Decimal) -> str:
    """Webhook amounts: two decimals (``"181.12"``, ``"-10.00"``)."""
    return format(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


def fmt_created(value: datetime) -> str:
    """ISO-8601 UTC with ``Z`` and 0-3 fractional digits (trailing zeros trimmed)."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    ms = value.microsecond // 1000
    frac = f".{ms:03d}".rstrip("0") if ms else ""
    return f"{base}{frac}Z"


def fmt_mx_text(value: datetime) -> str:
    """``"Aug 11 2025 10:02AM"`` / ``"Aug  5 2025  6:02AM"`` (SQL Server style 100)."""
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    hour12 = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    return (
        f"{months[value.month - 1]} {value.day:>2} {value.year} "
        f"{hour12:>2}:{value.minute:02d}{ampm}"
    )


def parse_offset(text: str) -> timedelta:
    sign = -1 if text.strip().startswith("-") else 1
    hours, _, minutes = text.strip().lstrip("+-").partition(":")
    return sign * timedelta(hours=int(hours), minutes=int(minutes or 0))


def _parse_when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_interval(day: date, interval: str, every: str) -> date:
    try:
        n = int(every.split()[0])
    except (ValueError, IndexError):
        n = 1
    if interval == "Weekly":
        return day + timedelta(weeks=n)
    if interval == "Yearly":
        return day.replace(year=day.year + n)
    if interval == "Once":
        return day
    month0 = day.month - 1 + n
    year = day.year + month0 // 12
    month = month0 % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------
# faults
# ------------------------------------------------------------------------------------------

FAULT_KINDS = ("status", "latency", "hang", "not_found", "bad_credentials", "bad_body")


@dataclass
class Fault:
    id: int
    path_prefix: str
    kind: str
    status: int = 503
    retry_after: str | None = None
    latency_ms: float = 0.0
    probability: float = 1.0
    remaining: int | None = None
    method: str | None = None
    applied: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path_prefix": self.path_prefix,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "probability": self.probability,
            "count": self.remaining,
            "method": self.method,
            "applied": self.applied,
        }


@dataclass
class Credential:
    key: str
    secret: str
    merchant_ids: set[int] = field(default_factory=set)


# ------------------------------------------------------------------------------------------
# the state
# ------------------------------------------------------------------------------------------


class StandinState:
    """Everything the stand-in knows. Thread-safe."""

    def __init__(self, seed: int | None = None, id_offset: int = 0) -> None:
        self.lock = threading.RLock()
        # added to every id the stand-in hands out: runs against one database (a benchmark
        # reusing its data) then never hand out an id an earlier run's rows hold
        self.id_offset = id_offset
        self._init(seed)

    def _init(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(seed)
        self.latency_ms = 0.0
        self.merchants: dict[int, dict[str, Any]] = {}
        self.credentials: dict[str, Credential] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.payments: dict[int, dict[str, Any]] = {}
        self.payment_meta: dict[int, dict[str, Any]] = {}
        self.merchant_payments: dict[int, list[int]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.invoice_payments: dict[int, list[int]] = {}
        self.contracts: dict[int, dict[str, Any]] = {}
        self.contract_payments: dict[int, list[int]] = {}
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.sinks: dict[str, list[Any]] = {}
        self.faults: list[Fault] = []
        self.counters: Counter[str] = Counter()
        self.status_counters: Counter[str] = Counter()
        self._merchant_ids = itertools.count(1000012345 + self.id_offset)
        self._customer_ids = itertools.count(30000001 + self.id_offset)
        self._payment_ids = itertools.count(4000000012345678 + self.id_offset)
        self._invoice_ids = itertools.count(7100000001 + self.id_offset)
        self._invoice_numbers: dict[int, itertools.count[int]] = {}
        self._purchase_ids = itertools.count(5500001 + self.id_offset)
        self._contract_ids = itertools.count(880001 + self.id_offset)
        self._subscription_ids = itertools.count(61001 + self.id_offset)
        self._fault_ids = itertools.count(1)
        self._batch = 1700

    def reset(self, seed: int | None = None) -> None:
        with self.lock:
            self._init(seed)

    # -- config, faults, counters ----------------------------------------------------------

    def configure(self, latency_ms: float | None = None, seed: int | None = None) -> dict[str, Any]:
        with self.lock:
            if latency_ms is not None:
                self.latency_ms = float(latency_ms)
            if seed is not None:
                self.rng = random.Random(seed)
                self.fault_rng = random.Random(seed)
            return {"latency_ms": self.latency_ms}

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        kind = str(spec.get("kind", "status"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        retry_after = spec.get("retry_after")
        count = spec.get("count")
        with self.lock:
            fault = Fault(
                id=next(self._fault_ids),
                path_prefix=str(spec.get("path_prefix", API_PREFIX)),
                kind=kind,
                status=int(spec.get("status", 503)),
                retry_after=None if retry_after is None else str(retry_after),
                latency_ms=float(spec.get("latency_ms", 0)),
                probability=float(spec.get("probability", 1.0)),
                remaining=None if count is None else int(count),
                method=(str(spec["method"]).upper() if spec.get("method") else None),
            )
            self.faults.append(fault)
            return fault.as_dict()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_faults(self, method: str, path: str) -> list[Fault]:
        """The faults that apply to this call (latency faults first), consuming counts."""
        with self.lock:
            chosen: list[Fault] = []
            for fault in self.faults:
                if not path.startswith(fault.path_prefix):
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.remaining is not None and fault.remaining <= 0:
                    continue
                if fault.probability < 1.0 and self.fault_rng.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.applied += 1
                chosen.append(fault)
                if fault.kind != "latency":
                    break  # one terminal fault per call
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return chosen

    def count(self, route: str, status: int) -> None:
        with self.lock:
            self.counters["total"] += 1
            self.counters[route] += 1
            self.status_counters[str(status)] += 1

    def read_counters(self, reset: bool = False) -> dict[str, Any]:
        with self.lock:
            result = {
                "total": self.counters.get("total", 0),
                "by_route": {k: v for k, v in self.counters.items() if k != "total"},
                "by_status": dict(self.status_counters),
                "faults": [f.as_dict() for f in self.faults],
            }
            if reset:
                self.counters.clear()
                self.status_counters.clear()
            return result

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, key: str | None, secret: str | None) -> Credential:
        with self.lock:
            cred = self.credentials.get(key or "")
            if cred is None or not secrets.compare_digest(cred.secret, secret or ""):
                raise StandinError(
                    401, "InvalidCredentials", "The consumer key or secret is invalid"
                )
            return cred

    @staticmethod
    def check_merchant(cred: Credential, merchant_id: int | None) -> None:
        if merchant_id is None or merchant_id not in cred.merchant_ids:
            raise StandinError(
                401, "Unauthorized", "You are not authorized to access this merchant"
            )

    # -- control: merchants, customers -------------------------------------------------------

    def create_merchant(
        self,
        merchant_id: int | None = None,
        name: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        timezone_offset: str = "-8:00",
        daylight_saving: bool = True,
    ) -> dict[str, Any]:
        with self.lock:
            mid = int(merchant_id) if merchant_id is not None else next(self._merchant_ids)
            while merchant_id is None and mid in self.merchants:
                mid = next(self._merchant_ids)
            name = name or f"Practice {mid}"
            merchant = {
                "id": mid,
                "name": name,
                "dba": name,
                "xmid": str(5000000000 + mid % 1000000000),
                "status": "Active",
                "timezoneOffset": timezone_offset,
                "daylightSaving": daylight_saving,
                "currencyCode": "USD",
                "address": {"city": "Austin", "state": "TX", "zip": "78701"},
            }
            self.merchants[mid] = merchant
            self.merchant_payments.setdefault(mid, [])
            self._invoice_numbers.setdefault(mid, itertools.count(2600 + self.rng.randint(0, 300)))
            key = consumer_key or secrets.token_hex(12)
            secret = consumer_secret or secrets.token_urlsafe(24)
            cred = self.credentials.get(key)
            if cred is None:
                cred = Credential(key, secret)
                self.credentials[key] = cred
            elif cred.secret != secret:
                raise ValueError("consumer_key already exists with another secret")
            cred.merchant_ids.add(mid)
            return {
                "merchant_id": mid,
                "name": name,
                "consumer_key": key,
                "consumer_secret": secret,
                "timezone_offset": timezone_offset,
                "daylight_saving": daylight_saving,
            }

    def _merchant(self, merchant_id: int) -> dict[str, Any]:
        merchant = self.merchants.get(int(merchant_id))
        if merchant is None:
            raise not_found(f"Merchant {merchant_id}")
        return merchant

    def create_customer(
        self, merchant_id: int, name: str | None = None, number: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._merchant(merchant_id)
            cid = next(self._customer_ids)
            if name is None:
                name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            if number is None:
                # customerCode is often empty in real data
                number = "" if self.rng.random() < 0.4 else f"C{cid % 100000:05d}"
            customer = {
                "id": cid,
                "merchantId": int(merchant_id),
                "name": name,
                "number": number,
                "card": {
                    "cardType": self.rng.choice(CARD_TYPES),
                    "last4": f"{self.rng.randint(0, 9999):04d}",
                    "token": secrets.token_hex(8),
                    "expiryMonth": f"{self.rng.randint(1, 12):02d}",
                    "expiryYear": str(self.rng.randint(2026, 2031)),
                },
            }
            self.customers[cid] = customer
            return {"id": cid, "merchant_id": int(merchant_id), "name": name, "number": number}

    # -- control: sales, refunds, status -----------------------------------------------------

    def create_sale(
        self,
        merchant_id: int,
        customer_id: int | None = None,
        lines: list[dict[str, Any]] | None = None,
        source: str | None = None,
        declined: bool = False,
        contract: dict[str, Any] | None = None,
        contract_id: int | None = None,
        created: Any = None,
        tax: Any = "0",
        with_invoice: bool = True,
        extra_lines: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A card sale with an invoice (1..n lines). ``contract`` (``{"interval", "every",
        "name"}``) starts a recurring contract; ``contract_id`` bills an existing one (source
        ``Recurring``, lines copied from the contract unless given; ``extra_lines`` are added on
        top, e.g. a one-off product on the month's invoice)."""
        with self.lock:
            merchant = self._merchant(merchant_id)
            mid = merchant["id"]
            existing: dict[str, Any] | None = None
            if contract_id is not None:
                existing = self.contracts.get(int(contract_id))
                if existing is None:
                    raise not_found(f"Contract {contract_id}")
                customer_id = existing["customer"]["id"]
                source = source or "Recurring"
                if lines is None:
                    lines = copy.deepcopy(existing["_lines"])
            if customer_id is None:
                customer_id = self.create_customer(mid)["id"]
            customer = self.customers.get(int(customer_id))
            if customer is None or customer["merchantId"] != mid:
                raise not_found(f"Customer {customer_id}")
            if not lines:
                names = self.rng.sample(list(PRODUCTS), self.rng.randint(1, 3))
                lines = [{"product_name": n} for n in names]
            norm_lines = [self._norm_line(line) for line in [*lines, *(extra_lines or [])]]
            source = source or self.rng.choice(["QuickPay", "API", "Invoice", "Customer"])
            when = _parse_when(created) if created is not None else self._now()
            tax_d = Decimal(str(tax or "0"))
            subtotal = sum((ln["price"] * ln["quantity"] for ln in norm_lines), Decimal(0))
            total = subtotal + tax_d
            pid = next(self._payment_ids)
            invoice: dict[str, Any] | None = None
            if with_invoice:
                invoice = self._new_invoice(mid, customer, norm_lines, tax_d, when, source)
            code, message = (0, "Approved or completed successfully")
            if declined:
                code, message = self.rng.choice(DECLINE_REASONS)
            payment = {
                "id": pid,
                "created": fmt_created(when),
                "merchantId": mid,
                "status": "Declined" if declined else "Approved",
                "type": "Sale",
                "tenderType": "Card",
                "source": source,
                "amount": fmt_money(total),
                "tax": fmt_money(tax_d),
                "surchargeAmount": "0",
                "surchargeLabel": "",
                "refundedAmount": "0",
                "settledAmount": "0",
                "currency": "USD",
                "settledDate": "",
                "authCode": "" if declined else secrets.token_hex(3).upper(),
                "authMessage": message,
                "responseCode": code,
                "reference": str(self.rng.randint(100000000000, 999999999999)),
                "invoice": str(invoice["invoiceNumber"]) if invoice else "",
                "clientReference": "",
                "customerCode": customer["number"],
                "customerName": customer["name"],
                "invoiceIds": [invoice["id"]] if invoice else [],
                "originalId": None,
                "batch": "",
                "entryMode": "Keyed" if source != "Recurring" else "OnFile",
                "isDuplicate": False,
                "cardAccount": copy.deepcopy(customer["card"]),
            }
            if source in ("QuickPay", "API") and self.rng.random() < 0.5:
                payment["purchases"] = [
                    {
                        "name": ln["product_name"],
                        "unitPrice": fmt_money(ln["price"]),
                        "quantity": fmt_money(ln["quantity"]),
                        "taxAmount": "0",
                        "extendedAmount": fmt_money(ln["price"] * ln["quantity"]),
                    }
                    for ln in norm_lines
                ]
            self._store_payment(payment, customer["id"], None)
            if invoice is not None:
                self.invoice_payments[invoice["id"]].append(pid)
                if not declined:
                    invoice["status"] = "Paid"
                    invoice["paidAmount"] = invoice["totalAmount"]
                    invoice["balance"] = "0"
            contract_obj: dict[str, Any] | None = None
            if existing is not None:
                contract_obj = existing
                self._bill_contract(existing, when, declined)
            elif contract is not None:
                contract_obj = self._new_contract(mid, customer, norm_lines, total, when, contract)
                self._bill_contract(contract_obj, when, declined)
            if contract_obj is not None:
                self.contract_payments[contract_obj["id"]].append(pid)
                self.payment_meta[pid]["contract_id"] = contract_obj["id"]
                if invoice is not None:
                    invoice["sourceType"] = "Recurring"
            return {
                "payment": self.render_payment(pid),
                "invoice": self.render_invoice(invoice["id"]) if invoice else None,
                "contract": self.render_contract(contract_obj["id"]) if contract_obj else None,
                "webhook": self.webhook_for(pid),
            }

    def _now(self) -> datetime:
        now = datetime.now(UTC)
        # vary the fractional digits: 0..3 after trimming
        choice = self.rng.random()
        if choice < 0.2:
            return now.replace(microsecond=0)
        if choice < 0.4:
            return now.replace(microsecond=(now.microsecond // 100000) * 100000)
        return now

    def _norm_line(self, line: dict[str, Any]) -> dict[str, Any]:
        name = str(line.get("product_name") or line.get("productName") or "Office Visit")
        price = line.get("price")
        price_d = Decimal(str(price)) if price is not None else PRODUCTS.get(name, Decimal("100"))
        return {
            "product_name": name,
            "price": price_d,
            "quantity": Decimal(str(line.get("quantity", 1))),
            "description": str(line.get("description", "")),
        }

    def _store_payment(
        self, payment: dict[str, Any], customer_id: int, original_id: int | None
    ) -> None:
        pid = payment["id"]
        self.payments[pid] = payment
        self.payment_meta[pid] = {
            "customer_id": customer_id,
            "contract_id": None,
            "original_id": original_id,
            "created": _parse_when(payment["created"]),
        }
        self.merchant_payments[payment["merchantId"]].append(pid)

    def _new_invoice(
        self,
        mid: int,
        customer: dict[str, Any],
        lines: list[dict[str, Any]],
        tax: Decimal,
        when: datetime,
        source: str,
    ) -> dict[str, Any]:
        iid = next(self._invoice_ids)
        number = next(self._invoice_numbers[mid])
        purchases = []
        subtotal = Decimal(0)
        for ln in lines:
            amount = ln["price"] * ln["quantity"]
            subtotal += amount
            purchases.append(
                {
                    "id": next(self._purchase_ids),
                    "productId": PRODUCT_IDS.get(ln["product_name"], 99999),
                    "productName": ln["product_name"],
                    "description": ln["description"],
                    "quantity": fmt_money(ln["quantity"]),
                    "quantityReturned": "0",
                    "price": fmt_money(ln["price"]),
                    "subTotalAmount": fmt_money(amount),
                    "taxAmount": "0",
                    "discountAmount": "0",
                    "totalAmount": fmt_money(amount),
                    "productVariant": {"id": PRODUCT_IDS.get(ln["product_name"], 99999) * 10},
                }
            )
        total = subtotal + tax
        address = {
            "name": customer["name"],
            "address1": f"{self.rng.randint(100, 9999)} Main St",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "country": "US",
        }
        invoice = {
            "id": iid,
            "merchantId": mid,
            "invoiceNumber": number,
            "status": "Unpaid",
            "type": "Sale",
            "sourceType": "Recurring" if source == "Recurring" else source,
            "receiptNumber": str(number),
            "terms": "Due on receipt",
            "totalAmount": fmt_money(total),
            "subTotalAmount": fmt_money(subtotal),
            "taxAmount": fmt_money(tax),
            "discountAmount": "0",
            "balance": fmt_money(total),
            "paidAmount": "0",
            "invoiceDate": when.strftime("%Y-%m-%dT00:00:00"),
            "dueDate": when.strftime("%Y-%m-%d"),
            "created": fmt_created(when),
            "isTaxExempt": False,
            "memo": "",
            "customer": {"id": customer["id"], "name": customer["name"]},
            "billingAddress": address,
            "shippingAddress": copy.deepcopy(address),
            "purchases": purchases,
        }
        self.invoices[iid] = invoice
        self.invoice_payments[iid] = []
        return invoice

    def _new_contract(
        self,
        mid: int,
        customer: dict[str, Any],
        lines: list[dict[str, Any]],
        amount: Decimal,
        when: datetime,
        spec: dict[str, Any],
    ) -> dict[str, Any]:
        cid = next(self._contract_ids)
        interval = str(spec.get("interval", "Monthly"))
        every = str(spec.get("every", "4 Weeks" if interval == "Weekly" else "1 Month"))
        on = str(when.day) if interval == "Monthly" else when.strftime("%A")
        contract = {
            "id": cid,
            "subscriptionId": 3300000 + cid,
            "merchantId": mid,
            "name": str(spec.get("name") or f"{lines[0]['product_name']} Program"),
            "customerName": customer["name"],
            "customer": {"id": customer["id"], "name": customer["name"]},
            "interval": interval,
            "every": every,
            "on": on,
            "amount": fmt_money(amount),
            "type": "Recurring" if interval != "Once" else "OneTime",
            "status": str(spec.get("status", "Active")),
            "startDate": when.strftime("%Y-%m-%dT00:00:00"),
            "nextBillDate": when.strftime("%Y-%m-%dT00:00:00"),
            "lastInvoiceDate": "",
            "hasDeclinedPayment": False,
            "currencyCode": "USD",
            "_lines": [
                {
                    "product_name": ln["product_name"],
                    "price": str(ln["price"]),
                    "quantity": str(ln["quantity"]),
                }
                for ln in lines
            ],
        }
        self.contracts[cid] = contract
        self.contract_payments[cid] = []
        return contract

    def _bill_contract(self, contract: dict[str, Any], when: datetime, declined: bool) -> None:
        contract["lastInvoiceDate"] = when.strftime("%Y-%m-%dT00:00:00")
        contract["hasDeclinedPayment"] = declined
        next_day = add_interval(when.date(), contract["interval"], contract["every"])
        contract["nextBillDate"] = next_day.strftime("%Y-%m-%dT00:00:00")
        if contract["interval"] == "Once" and not declined:
            contract["status"] = "Completed"

    def create_refund(
        self, payment_id: int, amount: Any = None, created: Any = None
    ) -> dict[str, Any]:
        with self.lock:
            original = self.payments.get(int(payment_id))
            if original is None:
                raise not_found(f"Payment {payment_id}")
            if original["type"] != "Sale" or original["status"] in ("Declined", "Voided"):
                raise ValueError("only an approved or settled sale can be refunded")
            refundable = Decimal(original["amount"]) - Decimal(original["refundedAmount"])
            value = Decimal(str(amount)) if amount is not None else refundable
            if value <= 0 or value > refundable:
                raise ValueError(f"refund amount must be in (0, {refundable}]")
            when = _parse_when(created) if created is not None else self._now()
            pid = next(self._payment_ids)
            refund = copy.deepcopy(original)
            refund.pop("purchases", None)
            refund.update(
                {
                    "id": pid,
                    "created": fmt_created(when),
                    "status": "Approved",
                    "type": "Return",
                    "amount": fmt_money(value),
                    "tax": "0",
                    "refundedAmount": "0",
                    "settledAmount": "0",
                    "settledDate": "",
                    "batch": "",
                    "authCode": secrets.token_hex(3).upper(),
                    "authMessage": "Approved or completed successfully",
                    "responseCode": 0,
                    "reference": str(self.rng.randint(100000000000, 999999999999)),
                    "originalId": original["id"],
                }
            )
            meta = self.payment_meta[original["id"]]
            self._store_payment(refund, meta["customer_id"], original["id"])
            original["refundedAmount"] = fmt_money(Decimal(original["refundedAmount"]) + value)
            for iid in original.get("invoiceIds") or []:
                self.invoice_payments[iid].append(pid)
                invoice = self.invoices[iid]
                full = Decimal(original["refundedAmount"]) >= Decimal(original["amount"])
                invoice["status"] = "Refunded" if full else "PartiallyRefunded"
            return {"payment": self.render_payment(pid), "webhook": self.webhook_for(pid)}

    def set_payment_status(self, payment_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(int(payment_id))
            if payment is None:
                raise not_found(f"Payment {payment_id}")
            payment["status"] = status
            if status == "Settled":
                when = datetime.now(UTC) + timedelta(hours=self.rng.randint(1, 20))
                # settledDate sometimes lacks the "Z"
                text = fmt_created(when)
                payment["settledDate"] = text[:-1] if payment["id"] % 2 == 0 else text
                payment["settledAmount"] = payment["amount"]
                self._batch += 1
                payment["batch"] = str(self._batch)
            return self.render_payment(payment["id"])

    def set_contract_status(self, contract_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            contract = self.contracts.get(int(contract_id))
            if contract is None:
                raise not_found(f"Contract {contract_id}")
            contract["status"] = status
            if status in ("Cancelled", "Deleted", "Completed"):
                contract["nextBillDate"] = ""
            return self.render_contract(contract["id"])

    # -- rendering (MX JSON) -----------------------------------------------------------------

    def render_payment(self, payment_id: int, *, detail: bool = True) -> dict[str, Any]:
        payment = copy.deepcopy(self.payments[payment_id])
        if not detail:
            payment.pop("invoiceIds", None)
        if payment.get("originalId") is None:
            payment.pop("originalId", None)
        return payment

    def render_invoice(self, invoice_id: int) -> dict[str, Any]:
        invoice = copy.deepcopy(self.invoices[invoice_id])
        invoice["payments"] = [self.render_payment(p) for p in self.invoice_payments[invoice_id]]
        return invoice

    def render_contract(self, contract_id: int) -> dict[str, Any]:
        contract = copy.deepcopy(self.contracts[contract_id])
        contract.pop("_lines", None)
        return contract

    def webhook_for(self, payment_id: int, event_type: str | None = None) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(int(payment_id))
            if payment is None:
                raise not_found(f"Payment {payment_id}")
            merchant = self.merchants[payment["merchantId"]]
            return build_webhook_payload(payment, merchant, event_type=event_type)

    # -- API reads ---------------------------------------------------------------------------

    def api_get_payment(self, cred: Credential, payment_id: int) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(payment_id)
            if payment is None:
                raise not_found(f"Payment {payment_id}")
            self.check_merchant(cred, payment["merchantId"])
            return self.render_payment(payment_id)

    def api_list_payments(
        self,
        cred: Credential,
        merchant_id: int,
        limit: int,
        offset: int,
        start: date | None,
        end: date | None,
    ) -> dict[str, Any]:
        with self.lock:
            self.check_merchant(cred, merchant_id)
            ids = self.merchant_payments.get(merchant_id, [])
            metas = [(self.payment_meta[i]["created"], i) for i in ids]
            if start is not None:
                metas = [m for m in metas if m[0].date() >= start]
            if end is not None:
                metas = [m for m in metas if m[0].date() <= end]
            metas.sort(reverse=True)
            page = metas[offset : offset + limit]
            return {
                "recordCount": len(metas),
                "records": [self.render_payment(i, detail=False) for _, i in page],
            }

    def api_get_invoice(self, cred: Credential, invoice_id: int) -> dict[str, Any]:
        with self.lock:
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                raise not_found(f"Invoice {invoice_id}")
            self.check_merchant(cred, invoice["merchantId"])
            return self.render_invoice(invoice_id)

    def api_get_contract(self, cred: Credential, contract_id: int) -> dict[str, Any]:
        with self.lock:
            contract = self.contracts.get(contract_id)
            if contract is None:
                raise not_found(f"Contract {contract_id}")
            self.check_merchant(cred, contract["merchantId"])
            return self.render_contract(contract_id)

    def api_list_contracts(
        self, cred: Credential, merchant_id: int, status: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        with self.lock:
            self.check_merchant(cred, merchant_id)
            rows = [c for c in self.contracts.values() if c["merchantId"] == merchant_id]
            if status:
                rows = [c for c in rows if c["status"].lower() == status.lower()]
            rows.sort(key=lambda c: c["id"])
            page = rows[offset : offset + min(limit, 100)]
            return {
                "recordCount": len(rows),
                "records": [self.render_contract(c["id"]) for c in page],
            }

    def api_list_contract_payments(
        self, cred: Credential, contract_id: int, limit: int, offset: int
    ) -> dict[str, Any]:
        with self.lock:
            contract = self.contracts.get(contract_id)
            if contract is None:
                raise not_found(f"Contract {contract_id}")
            self.check_merchant(cred, contract["merchantId"])
            ids = sorted(self.contract_payments[contract_id], reverse=True)
            page = ids[offset : offset + limit]
            return {
                "recordCount": len(ids),
                "records": [self.render_payment(i, detail=False) for i in page],
            }

    def api_get_merchant(self, cred: Credential, merchant_id: int) -> dict[str, Any]:
        with self.lock:
            merchant = self.merchants.get(merchant_id)
            if merchant is None:
                raise not_found(f"Merchant {merchant_id}")
            self.check_merchant(cred, merchant_id)
            return copy.deepcopy(merchant)

    def api_put_subscription(self, cred: Credential, body: Any) -> None:
        if not isinstance(body, dict):
            raise StandinError(400, "ValidationError", "Validation failed", ["Body is required"])
        problems = []
        if not body.get("eventType"):
            problems.append("EventType is required")
        if not body.get("callbackUrl") and body.get("sendWebhook"):
            problems.append("CallbackUrl is required")
        merchant_id = body.get("merchantId")
        if not isinstance(merchant_id, int) or isinstance(merchant_id, bool):
            problems.append("MerchantId must be an integer")
        if problems:
            raise StandinError(400, "ValidationError", "Validation failed", problems)
        with self.lock:
            self.check_merchant(cred, merchant_id)
            for sub in self.subscriptions.values():
                if (
                    sub["merchantId"] == merchant_id
                    and sub["eventType"] == body["eventType"]
                    and sub["callbackUrl"] == body.get("callbackUrl")
                ):
                    raise StandinError(
                        400, "ValidationError", "Validation failed", ["Duplicate notification"]
                    )
            sid = next(self._subscription_ids)
            self.subscriptions[sid] = {
                "id": sid,
                "eventType": body["eventType"],
                "merchantId": merchant_id,
                "sendWebhook": bool(body.get("sendWebhook")),
                "callbackUrl": body.get("callbackUrl") or "",
                "sources": body.get("sources") or "",
                "threshold": fmt_money(body.get("threshold") or 0),
                "sendEmail": bool(body.get("sendEmail")),
                "emailAddress": body.get("emailAddress") or "",
                "sendSMS": bool(body.get("sendSMS")),
                "phoneNumber": body.get("phoneNumber") or "",
            }

    def api_list_subscriptions(
        self, cred: Credential, merchant_id: int | None
    ) -> list[dict[str, Any]]:
        with self.lock:
            if merchant_id is not None:
                self.check_merchant(cred, merchant_id)
                wanted = {merchant_id}
            else:
                wanted = set(cred.merchant_ids)
            return [
                copy.deepcopy(s) for s in self.subscriptions.values() if s["merchantId"] in wanted
            ]

    def api_delete_subscription(self, cred: Credential, subscription_id: int) -> None:
        with self.lock:
            sub = self.subscriptions.get(subscription_id)
            if sub is None:
                raise not_found(f"Subscription {subscription_id}")
            self.check_merchant(cred, sub["merchantId"])
            del self.subscriptions[subscription_id]

    def sink_add(self, name: str, payload: Any) -> int:
        with self.lock:
            items = self.sinks.setdefault(name, [])
            items.append(payload)
            return len(items)

    def sink_read(self, name: str) -> list[Any]:
        with self.lock:
            return copy.deepcopy(self.sinks.get(name, []))

    def subscriptions_for(self, merchant_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(s)
                for s in self.subscriptions.values()
                if s["merchantId"] == merchant_id
            ]


# ------------------------------------------------------------------------------------------
# webhook payloads
# ------------------------------------------------------------------------------------------


def event_type_for(payment: dict[str, Any]) -> str:
    if payment.get("type") == "Return":
        return "RefundCreated"
    if payment.get("status") == "Declined":
        return "PaymentFail"
    return "PaymentSuccess"


def build_webhook_payload(
    payment: dict[str, Any],
    merchant: dict[str, Any],
    *,
    event_type: str | None = None,
    legacy_nulls: bool = False,
) -> dict[str, Any]:
    """The flat, all-strings MX notification for a stand-in payment (MX JSON).

    ``totalAmount`` is negative for refunds; ``transactionDate`` is UTC and ``localDate`` the
    merchant's local time, both like ``"Aug 11 2025 10:02AM"``. ``invoiceId`` is empty as in
    real traffic. ``legacy_nulls`` sends ``null`` instead of ``""`` for missing values.
    """
    created = _parse_when(payment["created"])
    offset = parse_offset(str(merchant.get("timezoneOffset") or "0:00"))
    local = (created + offset).replace(tzinfo=None)
    is_return = payment.get("type") == "Return"
    amount = Decimal(str(payment.get("amount") or "0"))
    total = -amount if is_return else amount
    card = payment.get("cardAccount") or {}
    empty: str | None = None if legacy_nulls else ""

    def s(value: Any) -> str | None:
        if value is None or value == "":
            return empty
        return str(value)

    return {
        "eventType": event_type or event_type_for(payment),
        "merchantId": str(payment["merchantId"]),
        "xmid": s(merchant.get("xmid")),
        "dba": s(merchant.get("dba")),
        "id": str(payment["id"]),
        "invoiceId": empty,
        "invoiceNumber": s(payment.get("invoice")),
        "transactionDate": fmt_mx_text(created),
        "localDate": fmt_mx_text(local),
        "transactionTypeName": "Return" if is_return else "Sale",
        "paymentType": s(payment.get("tenderType")),
        "card": s(card.get("cardType")),
        "referenceNumber": s(payment.get("reference")),
        "authorizationCode": s(payment.get("authCode")),
        "responseCode": str(payment.get("responseCode", 0)),
        "replayId": empty,
        "pan4": s(card.get("last4")),
        "totalAmount": fmt_webhook_money(total),
        "baseAmount": fmt_webhook_money(total),
        "responseMessage": s(payment.get("authMessage")),
        "customer": s(payment.get("customerName")),
        "customerNumber": s(payment.get("customerCode")),
        "source": s(payment.get("source")),
        "customFields": empty,
        "fee": "0.00",
    }


def build_non_payment_payload(
    merchant: dict[str, Any], event_type: str, rng: random.Random | None = None
) -> dict[str, Any]:
    """A ``BatchClosed`` / ``Deposit`` style notification: no payment id."""
    rng = rng or random.Random()
    now = datetime.now(UTC)
    return {
        "eventType": event_type,
        "merchantId": str(merchant["id"]),
        "xmid": str(merchant.get("xmid") or ""),
        "dba": str(merchant.get("dba") or ""),
        "id": "",
        "transactionDate": fmt_mx_text(now),
        "totalAmount": fmt_webhook_money(Decimal(rng.randint(100, 500000)) / 100),
        "batchNumber": str(rng.randint(1000, 9999)),
    }
