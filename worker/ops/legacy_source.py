"""Reading the legacy database (docs/operations.md, "Legacy import"): read-only, one query per
kind, each row validated by a pydantic model."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from worker.ops.errors import CommandError


class LegacyRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class LegacyMerchant(LegacyRow):
    merchant_id: int
    consumer_key: str | None
    consumer_secret: str | None
    environment: str | None
    is_active: bool | None


class LegacyProductCategory(LegacyRow):
    merchant_id: int
    product_name: str
    category: str | None


class LegacyMembership(LegacyRow):
    merchant_id: int
    customer_name: str | None
    customer_id: int | None
    product_name: str
    product_category: str | None
    membership_status: str | None
    fulfillment_type: str | None
    referral_source: str | None
    google_review_submitted: bool | None
    legacy_at: datetime | None

    def fields(self) -> dict[str, Any]:
        return {
            "membership_status": self.membership_status,
            "fulfillment": self.fulfillment_type,
            "referral_source": self.referral_source,
            "google_review_submitted": self.google_review_submitted,
        }


class LegacyInvoice(LegacyRow):
    merchant_id: int
    mx_invoice_id: int
    data_sent_status: str | None
    data_sent_at: datetime | None
    data_sent_notes: str | None
    ordered_by_provider_at: datetime | None

    def fields(self) -> dict[str, Any]:
        return {
            "data_sent_status": self.data_sent_status,
            "data_sent_at": self.data_sent_at.isoformat() if self.data_sent_at else None,
            "data_sent_notes": self.data_sent_notes,
            "ordered_by_provider_at": (
                self.ordered_by_provider_at.isoformat() if self.ordered_by_provider_at else None
            ),
        }


class PracticeMap(RootModel[dict[int, str]]):
    """``--practice-map`` file: JSON object, legacy merchant id -> practice slug."""


MERCHANTS_SQL: LiteralString = """
    select distinct on (merchant_id)
        merchant_id, consumer_key, consumer_secret, environment, is_active
    from public.mx_merchant_configs
    where merchant_id is not null
    order by merchant_id, is_active desc nulls last, updated_at desc nulls last
"""

PRODUCT_CATEGORIES_SQL: LiteralString = """
    select merchant_id, product_name, category
    from public.product_categories
    where merchant_id is not null and product_name is not null and coalesce(is_active, true)
    order by merchant_id, product_name
"""

# the newest recurring transaction of a patient for a product carries the current values
MEMBERSHIPS_SQL: LiteralString = """
    select distinct on (t.merchant_id, lower(trim(t.customer_name)), lower(trim(t.product_name)))
        t.merchant_id, t.customer_name, i.customer_id, t.product_name, t.product_category,
        t.membership_status, t.fulfillment_type, t.referral_source, t.google_review_submitted,
        coalesce(t.updated_at, t.transaction_date) as legacy_at
    from public.transactions as t
    left join public.invoices as i on i.id = t.invoice_id
    where t.source = 'Recurring' and t.merchant_id is not null
        and nullif(trim(t.customer_name), '') is not null
        and nullif(trim(t.product_name), '') is not null
    order by t.merchant_id, lower(trim(t.customer_name)), lower(trim(t.product_name)),
        t.transaction_date desc nulls last, t.created_at desc nulls last, t.id desc
"""

INVOICES_SQL: LiteralString = """
    select merchant_id, mx_invoice_id, data_sent_status, data_sent_at, data_sent_notes,
        ordered_by_provider_at
    from public.invoices
    where mx_invoice_id is not null and merchant_id is not null
        and (coalesce(data_sent_status, 'pending') <> 'pending' or data_sent_at is not null
            or nullif(data_sent_notes, '') is not null or ordered_by_provider_at is not null)
    order by merchant_id, mx_invoice_id
"""


class LegacyData(BaseModel):
    merchants: list[LegacyMerchant]
    product_categories: list[LegacyProductCategory]
    memberships: list[LegacyMembership]
    invoices: list[LegacyInvoice]

    @property
    def total(self) -> int:
        return (
            len(self.merchants)
            + len(self.product_categories)
            + len(self.memberships)
            + len(self.invoices)
        )


def read_legacy(url: str) -> LegacyData:
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.read_only = True
            with conn.cursor(row_factory=dict_row) as cur:

                def rows(query: LiteralString) -> list[dict[str, Any]]:
                    cur.execute(query)
                    return cur.fetchall()

                return LegacyData(
                    merchants=rows(MERCHANTS_SQL),
                    product_categories=rows(PRODUCT_CATEGORIES_SQL),
                    memberships=rows(MEMBERSHIPS_SQL),
                    invoices=rows(INVOICES_SQL),
                )
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"legacy database: {message}") from exc
    except ValidationError as exc:
        raise CommandError(f"legacy database: unexpected data: {exc.errors()[0]['msg']}") from exc


def read_practice_map(path: str) -> dict[int, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return PracticeMap.model_validate_json(handle.read()).root
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise CommandError(
            f"{path}: expected a JSON object of legacy merchant id -> practice slug "
            f"({exc.errors()[0]['msg']})"
        ) from exc
