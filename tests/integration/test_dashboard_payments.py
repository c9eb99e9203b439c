"""The payments and contracts pages over real HTTP: every route as owner, admin and staff of
practice A, staff of practice B, a user of no practice and a signed-out visitor; another
practice's ids get a 404 and no data; bad filters a 400 with the reason; the totals, pages and
CSV agree with what the database holds."""

from __future__ import annotations

import csv
import io
import re

import pytest

from dashboard import routes_payments
from tests.support.dashboard_fixtures import Dash
from tests.support.dashboard_visitors import MEMBERS_A, OUTSIDERS, Visitor, a_names, owner_rows


def contract_of_a(dash: Dash) -> int:
    return dash.world.a.contracts["Adam Abbot"]


def routes(dash: Dash) -> list[str]:
    """Every page of this change, with practice A's ids."""
    base = f"/p/{dash.world.a.id}"
    programme = dash.world.a.programmes[0]
    patient = dash.world.a.patients[0]
    return [
        f"{base}/payments",
        f"{base}/payments?view=recurring&kind=sale&invoice=yes&from=2020-01-01&to=2099-12-31",
        f"{base}/payments?programme={programme}&status=Approved&source=Recurring&q=a",
        f"{base}/payments/export.csv",
        f"{base}/payments/export.csv?kind=decline",
        f"{base}/contracts",
        f"{base}/contracts?status=Active&q=adam",
        f"{base}/contracts?patient={patient}",
        f"{base}/contracts/{contract_of_a(dash)}",
    ]


def totals(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="total-(\w+)">([^<]*)<', page))


@pytest.mark.parametrize("role", [*MEMBERS_A, "viewer_a"])  # payments are read-only
def test_members_of_a_reach_every_page(dash: Dash, visitors: dict[str, Visitor], role: str) -> None:
    for path in routes(dash):
        response = visitors[role].get(path)
        assert response.status_code == 200, (role, path, response.text[-500:])
    page = visitors[role].get(f"/p/{dash.world.a.id}/payments?limit=100").text
    for name in a_names(dash):
        assert name in page, name
    partial = visitors[role].get(f"/p/{dash.world.a.id}/payments?kind=decline", htmx=True)
    assert partial.status_code == 200
    assert 'id="payment-results"' in partial.text
    assert "<html" not in partial.text


@pytest.mark.parametrize("role", OUTSIDERS)
@pytest.mark.parametrize("htmx", [False, True])
def test_outsiders_get_404_and_no_data(
    dash: Dash, visitors: dict[str, Visitor], role: str, htmx: bool
) -> None:
    names = a_names(dash)
    for path in routes(dash):
        response = visitors[role].get(path, htmx)
        assert response.status_code == 404, (role, path, response.status_code)
        assert not any(name in response.text for name in names), (role, path)


def test_signed_out_visitors_are_sent_to_sign_in(dash: Dash, visitors: dict[str, Visitor]) -> None:
    for path in routes(dash):
        response = visitors["anonymous"].get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/auth/sign-in"), path


def test_foreign_ids_inside_own_practice_urls_get_404(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    """staff_b in practice B's own pages, with practice A's contract, programme, patient."""
    b = f"/p/{dash.world.b.id}"
    a = dash.world.a
    names = a_names(dash)
    for path in (
        f"{b}/contracts/{contract_of_a(dash)}",
        f"{b}/payments?programme={a.programmes[0]}",
        f"{b}/payments/export.csv?programme={a.programmes[0]}",
        f"{b}/contracts?patient={a.patients[0]}",
    ):
        response = visitors["staff_b"].get(path)
        assert response.status_code == 404, path
        assert not any(name in response.text for name in names), path
    assert visitors["staff_b"].get(f"{b}/payments").status_code == 200


def test_bad_filters_get_400_with_the_reason(dash: Dash, visitors: dict[str, Visitor]) -> None:
    base = f"/p/{dash.world.a.id}"
    cases = {
        "/payments?kind=gift": "kind must be one of sale, refund, decline, other",
        "/payments?from=yesterday": "from must be a date",
        "/payments?from=2026-02-05&to=2026-02-01": "from must not be after to",
        "/payments?invoice=maybe": "invoice must be yes or no",
        "/payments?view=weekly": "view must be all or recurring",
        "/payments?programme=trt": "programme must be a programme id",
        "/payments?after=not-a-cursor": "after is not a page cursor",
        "/payments?status=" + "x" * 65: "status is longer than 64 characters",
        "/payments?q=" + "x" * 101: "the search is longer than 100 characters",
        "/payments?limit=7": "limit must be one of 25, 50, 100",
        "/payments?colour=red": "unknown parameter(s): colour",
        "/payments/export.csv?kind=gift": "kind must be one of",
        "/contracts?after=abc": "after is not a page cursor",
        "/contracts?patient=someone": "patient must be a patient id",
    }
    for path, reason in cases.items():
        for htmx in (False, True):
            response = visitors["staff_a"].get(base + path, htmx)
            assert response.status_code == 400, (path, response.status_code)
            assert reason in response.text.replace("&#39;", "'"), (path, response.text[-400:])


def test_filters_and_totals_agree_with_the_database(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    base = f"/p/{a.id}/payments"
    ((count, declines, refunds, refunded),) = owner_rows(
        dash,
        "select count(*), count(*) filter (where status = 'Declined'), "
        "count(*) filter (where type = 'Return'), "
        "coalesce(sum(amount) filter (where type = 'Return'), 0) "
        "from app.payments where practice_id = %s",
        (a.id,),
    )
    assert declines >= 1
    assert refunds >= 1
    everything = totals(visitors["owner_a"].get(base).text)
    assert everything["count"] == f"{count:,}"
    assert everything["refunds"] == f"${refunded:,.2f}"

    page = visitors["owner_a"].get(f"{base}?kind=decline").text
    assert totals(page)["count"] == str(declines)
    assert set(re.findall(r'data-kind="(\w+)"', page)) == {"decline"}
    page = visitors["owner_a"].get(f"{base}?kind=refund").text
    assert totals(page)["count"] == str(refunds)
    assert totals(page)["net"] == f"-${refunded:,.2f}"  # no sale in this filter
    # the patient search narrows list and totals to Adam's payments: his sale and the decline
    page = visitors["owner_a"].get(f"{base}?q=adam+abbot").text
    assert totals(page)["count"] == "2"
    assert "Amy Avery" not in page


def test_keyset_pages_cover_every_payment_once(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    expected = {
        r[0]
        for r in owner_rows(dash, "select id from app.payments where practice_id = %s", (a.id,))
    }
    assert len(expected) > 25  # two pages at least
    seen: list[int] = []
    url: str | None = f"/p/{a.id}/payments?limit=25"
    while url:
        page = visitors["staff_a"].get(url).text
        seen += [int(x) for x in re.findall(r"<td>(\d{5,})</td>\s*</tr>", page)]
        found = re.search(r'href="([^"]+)"[^>]*data-testid="next-page"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(expected)


def test_csv_export_follows_the_filter(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    response = visitors["admin_a"].get(f"/p/{a.id}/payments/export.csv?kind=decline")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["kind"] for r in rows] == ["decline"]
    assert rows[0]["patient_name"] == "Adam Abbot"
    assert rows[0]["time_zone"] == "America/Chicago"
    every = list(
        csv.DictReader(io.StringIO(visitors["admin_a"].get(f"/p/{a.id}/payments/export.csv").text))
    )
    ((count,),) = owner_rows(
        dash, "select count(*) from app.payments where practice_id = %s", (a.id,)
    )
    assert len(every) == count
    assert (
        visitors["admin_a"].get(f"/p/{a.id}/payments/export.csv?after=eyJ0IjoxfQ").status_code
        == 400
    )


def test_recurring_view_lists_recurring_payments_only(
    dash: Dash, visitors: dict[str, Visitor]
) -> None:
    a = dash.world.a
    ((recurring,),) = owner_rows(
        dash,
        "select count(*) from app.payments as p where p.practice_id = %s "
        "and (p.source = 'Recurring' or exists "
        "(select from app.contract_payments as cp where cp.payment_id = p.id))",
        (a.id,),
    )
    page = visitors["staff_a"].get(f"/p/{a.id}/payments?view=recurring").text
    assert totals(page)["count"] == str(recurring)
    assert 'aria-current="page" data-testid="view-recurring"' in page


def test_contracts_list_and_detail(dash: Dash, visitors: dict[str, Visitor]) -> None:
    a = dash.world.a
    contract = contract_of_a(dash)
    page = visitors["staff_a"].get(f"/p/{a.id}/contracts").text
    assert page.count('data-testid="contract-row"') == len(a.contracts)
    assert 'data-status="Active"' in page
    assert "Adam Abbot" in page
    assert "Bob Baker" not in page
    # MX's statuses are open: one the code does not know is a filter like any other
    page = visitors["staff_a"].get(f"/p/{a.id}/contracts?status=Suspended").text
    assert 'data-testid="empty"' in page
    page = visitors["staff_a"].get(f"/p/{a.id}/contracts?q=adam").text
    assert page.count('data-testid="contract-row"') == 1

    detail = visitors["staff_a"].get(f"/p/{a.id}/contracts/{contract}").text
    assert "Adam Abbot" in detail
    payments = owner_rows(
        dash, "select payment_id from app.contract_payments where contract_id = %s", (contract,)
    )
    assert len(payments) >= 2  # the sale and its declined renewal
    for (payment_id,) in payments:
        assert f"<td>{payment_id}</td>" in detail
    assert 'data-testid="contract-memberships"' in detail

    patient = owner_rows(dash, "select patient_id from app.contracts where id = %s", (contract,))[
        0
    ][0]
    patient_page = visitors["staff_a"].get(f"/p/{a.id}/patients/{patient}").text
    assert f"/p/{a.id}/contracts?patient={patient}" in patient_page
    mine = visitors["staff_a"].get(f"/p/{a.id}/contracts?patient={patient}").text
    assert mine.count('data-testid="contract-row"') == 1
    assert visitors["staff_a"].get(f"/p/{a.id}/contracts/999999999").status_code == 404


def test_csv_export_streams_page_after_page(
    dash: Dash, visitors: dict[str, Visitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 10 (1,000 in production): the header once, every payment once, in list order."""
    monkeypatch.setattr(routes_payments, "CSV_PAGE", 10)
    a = dash.world.a
    response = visitors["staff_a"].get(f"/p/{a.id}/payments/export.csv")
    assert response.status_code == 200
    assert response.text.count("payment_id,created_at") == 1
    ids = [int(r["payment_id"]) for r in csv.DictReader(io.StringIO(response.text))]
    expected = owner_rows(
        dash,
        "select id from app.payments where practice_id = %s order by mx_created_at desc, id desc",
        (a.id,),
    )
    assert ids == [r[0] for r in expected]
    assert len(ids) > 20  # three pages
