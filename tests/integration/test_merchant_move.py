"""Issue 12, item 3, from the operator's side: `merchant update --practice` of an account
that has history is refused with a clear error and changes nothing; an account without
history still moves."""

from __future__ import annotations

import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import create_merchant, onboard
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker.__main__ import main

TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


async def test_merchant_update_practice_refused_once_history_exists(
    db_url: str,
    standin: StandinHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    merchant = onboard(db_url, standin, 1000012345)
    other = create_merchant(db_url, 1000099999, slug="other-clinic")
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    ingest(db_url, merchant.token, created["webhook"])
    await drain(worker_settings(db_url, standin.base_url))

    argv = ["merchant", "update", "--mx-merchant-id", str(merchant.mx_merchant_id)]
    code = main([*argv, "--practice", "other-clinic"])
    err = capsys.readouterr().err
    assert code == 2
    assert "has history in practice" in err
    assert "History stays with the practice that received it" in err
    assert query(
        db_url,
        "select practice_id from app.merchant_accounts where mx_merchant_id = %s",
        (merchant.mx_merchant_id,),
    ) == [(merchant.practice_id,)]

    # an account with no history yet moves
    fresh = create_merchant(db_url, 1000077777, slug="fresh-clinic")
    code = main([*argv[:2], "--mx-merchant-id", "1000077777", "--practice", "other-clinic"])
    assert code == 0, capsys.readouterr().err
    assert query(
        db_url,
        "select practice_id from app.merchant_accounts where id = %s",
        (fresh.merchant_account_id,),
    ) == [(other.practice_id,)]
