"""An MX client and credentials for one merchant account, as the operator commands need them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from worker.mx.client import MxCredentials, base_url_for
from worker.ops.db import fetch_all, operator_session
from worker.ops.errors import CommandError

BASE_URL_ENV = "MX_BASE_URL"


@dataclass(frozen=True)
class MerchantAccess:
    mx_merchant_id: int
    environment: str
    base_url: str
    credentials: MxCredentials


def merchant_access(mx_merchant_id: int) -> MerchantAccess:
    """Credentials (from Vault, through private.merchant_credentials) and the API base URL:
    ``MX_BASE_URL`` when set, else by the account's environment."""
    with operator_session() as conn:
        rows = fetch_all(
            conn,
            "select c.mx_merchant_id, c.environment, c.consumer_key, c.consumer_secret "
            "from app.merchant_accounts as m, private.merchant_credentials(m.id) as c "
            "where m.mx_merchant_id = %s",
            (mx_merchant_id,),
        )
        if not rows:
            known = fetch_all(
                conn,
                "select 1 from app.merchant_accounts where mx_merchant_id = %s",
                (mx_merchant_id,),
            )
            if known:
                raise CommandError(
                    f"merchant {mx_merchant_id} has no credentials (merchant update --credentials)"
                )
            raise CommandError(f"no merchant account with MX merchant id {mx_merchant_id}")
    row = rows[0]
    try:
        base_url = base_url_for(row["environment"], os.environ.get(BASE_URL_ENV) or None)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return MerchantAccess(
        mx_merchant_id=mx_merchant_id,
        environment=row["environment"],
        base_url=base_url,
        credentials=MxCredentials(row["consumer_key"], row["consumer_secret"]),
    )
