"""Scenario 5: fuzz the webhook (hypothesis and schemathesis); stored rows checked."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.scenarios.traffic import event_statuses, scalar
from tests.reliability.scenarios.truth import DUPLICATE_ROW_CHECKS
from tests.support.merchants import create_merchant
from tests.support.pipeline import query
from tests.support.reliability_report import ScenarioResult
from tests.support.webhook_server import start_webhook

# ------------------------------------------------------------------ 5. fuzz the webhook

SQL_META = [
    "'; drop table app.webhook_events; --",
    '" or 1=1 --',
    "1; select pg_sleep(10)",
    "$$; delete from app.payments; $$",
    "\\x00\\'",
    "%s %(x)s {0}",
    "E'\\\\'",
    "/* */ union select * from pg_authid",
]
ODD_UNICODE = [
    "\u202etxet desrever",
    "Zo\u0308e\u0301 \u0301",
    "\U0001f4a9\U0001f525" * 20,
    "\ufeff\u200b\u2060",
    "\uffff\ufffe",
    "\u0130\u0131\u00df",
    "\u03a9\u2248\u00e7\u221a\u222b\u02dc\u00b5\u2264\u2265\u00f7",
    "\u0000-after-nul",
    "4111 1111 1111 1111",
]
EVENT_TYPES = ["PaymentSuccess", "PaymentFail", "RefundCreated", "ContractCreated", "", "payment"]
RAW_BODIES = [
    b"",
    b"   ",
    b"null",
    b"[]",
    b"[{}]",
    b"123",
    b'"PaymentSuccess"',
    b"{",
    b'{"eventType": "PaymentSuccess", "merchantId": 1, "id": NaN}',
    b'{"eventType": "PaymentSuccess", "id": 1e999999}',
    b'{"eventType": "\\ud800", "merchantId": "1"}',
    b'{"eventType": "PaymentSuccess", "merchantId": "\\u0000"}',
    b'{"a": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b'{"eventType": "PaymentSuccess", "eventType": "PaymentFail"}',
    b'{"id": ' + b"9" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 40 + b"1" + b"}" * 40,
]


def _strategies(merchant_id: int) -> Any:
    from hypothesis import strategies as st

    text = st.one_of(
        st.text(max_size=30),
        st.sampled_from(SQL_META),
        st.sampled_from(ODD_UNICODE),
        st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    )
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    value = st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )
    mid = st.one_of(
        st.just(str(merchant_id)),
        st.just(merchant_id),
        st.just(str(merchant_id + 1)),
        value,
    )
    payment_id = st.one_of(
        st.integers(min_value=1, max_value=10**18).map(str),
        st.integers(min_value=-(10**20), max_value=10**20),
        value,
    )
    base = st.fixed_dictionaries(
        {"eventType": st.one_of(st.sampled_from(EVENT_TYPES), value), "merchantId": mid},
        optional={
            "id": payment_id,
            "amount": st.one_of(st.just("181.12"), value),
            "transactionDate": st.one_of(st.just("2030-01-01T09:00:00Z"), value),
            "customer": value,
        },
    )
    with_extra = st.tuples(base, st.dictionaries(text, value, max_size=3)).map(
        lambda t: {**t[1], **t[0]}
    )
    objects = st.one_of(with_extra, st.dictionaries(text, value, max_size=6))
    as_json = st.one_of(objects, value).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    huge = st.tuples(st.integers(60_000, 70_000), st.sampled_from(["x", "é", "\U0001f4a9"])).map(
        lambda t: json.dumps(
            {
                "eventType": "PaymentSuccess",
                "merchantId": str(merchant_id),
                "id": "1",
                "memo": t[1] * (t[0] // len(t[1].encode())),
            },
            ensure_ascii=False,
        ).encode()
    )
    body = st.one_of(
        as_json, as_json, as_json, st.sampled_from(RAW_BODIES), st.binary(max_size=200), huge
    )
    token_kind = st.sampled_from(["valid"] * 8 + ["wrong", "hostile"])
    content_type = st.sampled_from(["application/json", "text/plain", None, "application/xml"])
    return st.tuples(body, token_kind, content_type)


@dataclass
class FuzzTally:
    statuses: Counter[int] = field(default_factory=Counter)
    stored_expected: int = 0  # answers that promise a stored row (or a counted duplicate)
    event_ids: Counter[int] = field(default_factory=Counter)  # event id -> 200 answers naming it
    server_errors: list[str] = field(default_factory=list)
    requests: int = 0
    bad_inputs: int = 0  # webhook posts the webhook did not accept (any non-2xx answer)
    answers: Counter[str] = field(default_factory=Counter)  # "status error" of valid-token posts

    def note(self, response: httpx.Response, valid_token: bool, sample: str) -> None:
        """One post to the webhook and its answer."""
        self.requests += 1
        status = response.status_code
        self.statuses[status] += 1
        if not 200 <= status < 300:
            self.bad_inputs += 1
        if status >= 500:
            self.server_errors.append(f"{status} for {sample[:160]!r}")
            return
        if not valid_token:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error", body.get("status")) if isinstance(body, dict) else "not json"
        self.answers[f"{status} {error}"] += 1
        if status in (400, 403, 422):
            self.stored_expected += 1
        elif status == 200:
            assert isinstance(body, dict), (status, response.text)
            self.event_ids[int(body["event_id"])] += 1
            self.stored_expected += 1


def fuzz_with_hypothesis(
    base_url: str, token: str, merchant_id: int, tally: FuzzTally, *, examples: int
) -> None:
    from urllib.parse import quote

    from hypothesis import HealthCheck, given, settings

    url = f"{base_url}/webhooks/mx/"
    with httpx.Client(timeout=30) as client:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=_strategies(merchant_id))
        def fuzz(case: tuple[bytes, str, str | None]) -> None:
            body, token_kind, content_type = case
            path_token = {
                "valid": token,
                "wrong": token[:-2] + "zz",
                "hostile": quote("' or 1=1 --/\u202e", safe=""),
            }[token_kind]
            headers = {"content-type": content_type} if content_type else {}
            response = client.post(url + path_token, content=body, headers=headers)
            tally.note(response, token_kind == "valid", body.decode("utf-8", "replace"))
            assert response.status_code < 500, (response.status_code, response.text, body[:300])

        fuzz()


def fuzz_with_schemathesis(base_url: str, token: str, tally: FuzzTally, *, examples: int) -> None:
    """Every operation of the app's own OpenAPI schema, cases generated by schemathesis
    (positive and negative); half the webhook cases use the real token so they get past
    authentication to the parser and the database."""
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    schema.config.generation.update(modes=list(schemathesis.GenerationMode))
    operations = [result.ok() for result in schema.get_all_operations()]
    with httpx.Client(timeout=30) as client:
        for operation in operations:
            _schemathesis_test(client, operation, base_url, token, tally, examples)()


def _schemathesis_test(
    client: httpx.Client,
    operation: Any,
    base_url: str,
    token: str,
    tally: FuzzTally,
    examples: int,
) -> Any:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    is_webhook = operation.path.startswith("/webhooks/")

    @settings(
        max_examples=examples if is_webhook else max(5, examples // 10),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), use_token=st.booleans())
    def run(case: Any, use_token: bool) -> None:
        valid = is_webhook and use_token
        if valid:
            case.path_parameters = {**(case.path_parameters or {}), "token": token}
        kwargs = case.as_transport_kwargs(base_url=base_url)
        for unused in ("verify", "cert", "timeout", "allow_redirects"):
            kwargs.pop(unused, None)
        if not kwargs.get("cookies"):
            kwargs.pop("cookies", None)
        response = client.request(**kwargs)
        if is_webhook:
            tally.note(response, valid, repr(case.body))
        else:
            tally.requests += 1
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                tally.server_errors.append(f"{response.status_code} {operation.path}")
        assert response.status_code < 500, (response.status_code, response.text, case.body)

    return run


@dataclass
class FuzzLedger:
    problems: list[str]
    lost: int  # 200 answers whose event id has no row in app.webhook_events
    double: int  # records beyond one per answer that promised one, or a payment event twice


def stored_row_problems(db_url: str, tally: FuzzTally) -> FuzzLedger:
    problems = []
    # a repeated body is stored once and counted in duplicate_count (rejected ones too);
    # rejects beyond WEBHOOK_REJECTS_PER_HOUR are counted, not stored (app.webhook_reject_counts)
    rows = scalar(
        db_url,
        "select count(*) + coalesce(sum(duplicate_count), 0)"
        " + (select coalesce(sum(not_stored), 0) from app.webhook_reject_counts)"
        " from app.webhook_events",
    )
    if rows != tally.stored_expected:
        problems.append(
            f"{rows} stored rows, duplicates and counted rejects, but {tally.stored_expected} "
            "answers promised one"
        )
    double = max(0, rows - tally.stored_expected)
    same_payment_twice = scalar(db_url, DUPLICATE_ROW_CHECKS["webhook event recorded twice"])
    if same_payment_twice:
        problems.append(f"{same_payment_twice} x webhook event recorded twice")
        double += same_payment_twice
    unclear = scalar(
        db_url,
        "select count(*) from app.webhook_events where status is null "
        "or status not in ('queued', 'ignored', 'rejected') "
        "or (status = 'rejected' and coalesce(btrim(reject_reason), '') = '') "
        "or (status = 'queued' and msg_id is null)",
    )
    if unclear:
        problems.append(f"{unclear} stored rows without a clear status or reason")
    known = {i for (i,) in query(db_url, "select id from app.webhook_events")}
    missing = set(tally.event_ids) - known
    if missing:
        problems.append(f"{len(missing)} acknowledged event ids not stored")
    lost = sum(tally.event_ids[i] for i in missing)
    return FuzzLedger(problems, lost, double)


def run_fuzz(
    db_url: str, *, hypothesis_examples: int, schemathesis_examples: int
) -> tuple[ScenarioResult, dict[str, Any]]:

    started = time.monotonic()
    merchant = create_merchant(db_url, 1000035005)
    tally = FuzzTally()
    problems: list[str] = []
    with start_webhook(db_url, webhook_rate_per_token=0, webhook_rate_per_address=0) as server:
        for name, fn in (
            (
                "hypothesis",
                lambda: fuzz_with_hypothesis(
                    server.base_url,
                    merchant.token,
                    merchant.mx_merchant_id,
                    tally,
                    examples=hypothesis_examples,
                ),
            ),
            (
                "schemathesis",
                lambda: fuzz_with_schemathesis(
                    server.base_url, merchant.token, tally, examples=schemathesis_examples
                ),
            ),
        ):
            try:
                fn()
            except AssertionError as exc:
                problems.append(f"{name}: {str(exc)[:600]}")
    ledger = stored_row_problems(db_url, tally)
    problems.extend(ledger.problems)
    if tally.server_errors:
        problems.append(f"{len(tally.server_errors)} x 5xx, first: {tally.server_errors[0]}")
    stored = event_statuses(db_url)
    result = ScenarioResult(
        scenario="5 fuzz webhook",
        load=f"{tally.requests} requests (hypothesis + schemathesis)",
        faults="hostile bodies, tokens, content types",
        bad_inputs=tally.bad_inputs,
        lost=ledger.lost,
        double_applied=ledger.double,
        seconds=time.monotonic() - started,
        passed=not problems,
        details={
            "responses": dict(sorted(tally.statuses.items())),
            "stored": stored,
            "server_errors": len(tally.server_errors),
            "valid_token_answers": dict(tally.answers),
        },
    )
    return result, {"problems": problems, "tally": tally}
