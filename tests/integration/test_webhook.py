"""The webhook receiver over real HTTP (uvicorn on loopback) against a real Postgres."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from common.logs import JsonFormatter
from tests.support.merchants import Merchant, create_merchant
from tests.support.tcp_proxy import proxy_database
from tests.support.webhook_server import WebhookServer, start_webhook
from webhook.payload import mask_card_numbers, parse_body
from webhook.ratelimit import TokenBuckets

MX_MERCHANT_ID = 1000012345


def payment(payment_id: str = "4000012345", event_type: str = "PaymentSuccess") -> dict[str, Any]:
    return {
        "eventType": event_type,
        "merchantId": str(MX_MERCHANT_ID),
        "id": payment_id,
        "invoiceId": "",
        "transactionDate": "Aug 11 2025 10:02AM",
        "totalAmount": "181.12",
        "responseCode": "0",
        "pan4": "4242",
        "customer": "Jane Doe",
        "somethingNew": None,
    }


@pytest.fixture
def merchant(db_url: str) -> Merchant:
    return create_merchant(db_url, MX_MERCHANT_ID)


@pytest.fixture
def server(db_url: str) -> Iterator[WebhookServer]:
    handle = start_webhook(db_url)
    yield handle
    handle.stop()


def hook(server: WebhookServer, token: str) -> str:
    return f"{server.base_url}/webhooks/mx/{token}"


def events(db_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from app.webhook_events order by id").fetchall()


def queue_length(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select queue_length from private.queue_metrics('mx_ingest')").fetchone()
    assert row
    return int(row[0])


# ---------------------------------------------------------------- the happy paths


def test_payment_event_is_recorded_and_queued(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    response = httpx.post(hook(server, merchant.token), json=payment())
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "queued"
    assert body["duplicate"] is False
    [event] = events(db_url)
    assert event["id"] == body["event_id"]
    assert event["status"] == "queued"
    assert event["payment_id"] == 4000012345
    assert event["mx_merchant_id"] == MX_MERCHANT_ID
    assert event["msg_id"] is not None
    assert event["payload"]["somethingNew"] is None  # unknown keys kept
    assert event["raw_body"] is None
    assert queue_length(db_url) == 1


def test_duplicate_is_acknowledged_and_not_queued_again(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    first = httpx.post(hook(server, merchant.token), json=payment())
    second = httpx.post(hook(server, merchant.token), json=payment())
    assert second.status_code == 200
    assert second.json() == {
        "status": "duplicate",
        "event_id": first.json()["event_id"],
        "duplicate": True,
    }
    [event] = events(db_url)
    assert event["duplicate_count"] == 1
    assert queue_length(db_url) == 1


@pytest.mark.parametrize("event_type", ["Deposit", "BatchClosed", "Chargeback", "BrandNewEvent"])
def test_non_payment_event_is_stored_as_ignored(
    db_url: str, merchant: Merchant, server: WebhookServer, event_type: str
) -> None:
    body = {"eventType": event_type, "merchantId": str(MX_MERCHANT_ID), "amount": "10.00"}
    response = httpx.post(hook(server, merchant.token), json=body)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    [event] = events(db_url)
    assert event["status"] == "ignored"
    assert event["event_type"] == event_type
    assert queue_length(db_url) == 0


def test_concurrent_identical_posts_queue_exactly_once(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
            return await asyncio.gather(
                *(client.post(hook(server, merchant.token), json=payment()) for _ in range(50))
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 50
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate"] * 49 + ["queued"]
    assert len({r.json()["event_id"] for r in responses}) == 1
    [event] = events(db_url)
    assert event["duplicate_count"] == 49
    assert queue_length(db_url) == 1


def test_token_rotation_and_retirement(db_url: str, merchant: Merchant) -> None:
    new_token = "rotated-" + "x" * 30
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select private.add_webhook_token(%s, %s)", (merchant.merchant_account_id, new_token)
        ).fetchone()
    assert row
    new_token_id = row[0]
    with start_webhook(db_url) as server:
        old = httpx.post(hook(server, merchant.token), json=payment("1"))
        new = httpx.post(hook(server, new_token), json=payment("2"))
        assert (old.json()["status"], new.json()["status"]) == ("queued", "queued")
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "select private.retire_webhook_tokens(%s, %s)",
                (merchant.merchant_account_id, new_token_id),
            )
        retired = httpx.post(hook(server, merchant.token), json=payment("3"))
        assert retired.status_code == 404
        assert httpx.post(hook(server, new_token), json=payment("4")).status_code == 200
    assert [e["payment_id"] for e in events(db_url)] == [1, 2, 4]


# ---------------------------------------------------------------- refusals


def test_unknown_token_is_404_and_nothing_is_stored(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    response = httpx.post(hook(server, "not-a-token-of-anyone-at-all"), json=payment())
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_token"
    assert events(db_url) == []
    metrics = httpx.get(server.metrics_url).text
    assert 'mx_webhook_events_total{event_type="PaymentSuccess",outcome="unknown_token"} 1.0' in (
        metrics
    )


def test_merchant_mismatch_is_403_and_stored_as_rejected(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    body = payment() | {"merchantId": "999"}
    response = httpx.post(hook(server, merchant.token), json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "merchant_mismatch"
    [event] = events(db_url)
    assert event["status"] == "rejected"
    assert "999" in event["reject_reason"]
    assert queue_length(db_url) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{broken", "body is not valid JSON"),
        (b"", "body is empty"),
        (b"[1, 2]", "body must be a JSON object, not an array"),
        (b'"PaymentSuccess"', "body must be a JSON object, not a string"),
        (b'{"eventType": NaN}', "body is not valid JSON"),
        (b"\xff\xfe{}", "body is not valid UTF-8"),
    ],
)
def test_unusable_body_is_400_and_raw_body_kept(
    db_url: str, merchant: Merchant, server: WebhookServer, body: bytes, message: str
) -> None:
    response = httpx.post(
        hook(server, merchant.token), content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    [event] = events(db_url)
    assert event["status"] == "rejected"
    assert event["reject_reason"].startswith(message)
    assert event["payload"] is None
    assert event["raw_body"] == body.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eventType": None}, "eventType is missing"),
        ({"eventType": ""}, "eventType is missing"),
        ({"eventType": 7}, "eventType must be a string"),
        ({"merchantId": ""}, "merchantId is missing"),
        ({"merchantId": None}, "merchantId is missing"),
        ({"merchantId": "10000x2345"}, "merchantId must be digits"),
        ({"id": ""}, "id (payment id) is required for PaymentSuccess"),
        ({"id": None}, "id (payment id) is required for PaymentSuccess"),
        ({"id": "12-34"}, "id (payment id) must be digits"),
        ({"id": "1" * 19}, "id (payment id) must be at most 18 digits"),
        ({"merchantId": "4" * 16}, "merchantId must be at most 12 digits"),
        ({"eventType": "E" * 65}, "eventType is longer than 64 characters"),
    ],
)
def test_invalid_fields_are_422_and_stored(
    db_url: str,
    merchant: Merchant,
    server: WebhookServer,
    changes: dict[str, Any],
    message: str,
) -> None:
    body = payment() | changes
    response = httpx.post(hook(server, merchant.token), json=body)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_payload", "message": message}
    [event] = events(db_url)
    assert event["status"] == "rejected"
    assert event["reject_reason"] == message
    assert event["payload"] is not None
    assert json.loads(event["raw_body"]) == json.loads(mask_card_numbers(json.dumps(body)))
    assert queue_length(db_url) == 0


def test_absent_keys_are_422(db_url: str, merchant: Merchant, server: WebhookServer) -> None:
    response = httpx.post(hook(server, merchant.token), json={"eventType": "RefundCreated"})
    assert response.status_code == 422
    assert response.json()["message"] == (
        "merchantId is missing; id (payment id) is required for RefundCreated"
    )
    assert events(db_url)[0]["status"] == "rejected"


def test_body_over_the_limit_is_413(db_url: str, merchant: Merchant) -> None:
    with start_webhook(db_url, webhook_max_body_bytes=1024) as server:
        big = payment() | {"filler": "x" * 2000}
        declared = httpx.post(hook(server, merchant.token), json=big)
        assert declared.status_code == 413
        assert declared.json()["error"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            yield b'{"filler": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'"}'

        chunked = httpx.post(hook(server, merchant.token), content=chunks())
        assert chunked.status_code == 413
        assert chunked.headers["content-type"].startswith("application/json")
        assert httpx.post(hook(server, merchant.token), json=payment()).status_code == 200
    assert len(events(db_url)) == 1


def test_rate_limits_give_429_with_retry_after(db_url: str, merchant: Merchant) -> None:
    with (
        start_webhook(db_url, webhook_rate_per_token=0.5, webhook_burst_per_token=3) as server,
        httpx.Client() as client,
    ):
        codes = [
            client.post(hook(server, merchant.token), json=payment(str(n))).status_code
            for n in range(1, 5)
        ]
        assert codes == [200, 200, 200, 429]
        limited = client.post(hook(server, merchant.token), json=payment("9"))
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        # another token has its own bucket
        assert client.post(hook(server, "another-token-entirely-xx"), json={}).status_code == 404
    assert len(events(db_url)) == 3

    with (
        start_webhook(db_url, webhook_rate_per_address=0.1, webhook_burst_per_address=2) as server,
        httpx.Client() as client,
    ):
        codes = [client.post(hook(server, f"token-{n}"), json={}).status_code for n in range(3)]
        assert codes == [404, 404, 429]
        assert int(client.post(hook(server, "x"), json={}).headers["retry-after"]) >= 5


# ---------------------------------------------------------------- the database away


def test_database_down_gives_503_then_recovers(db_url: str, merchant: Merchant) -> None:
    # the database is away: nothing answers behind the proxy until it is restored
    proxy, gated_url = proxy_database(db_url)
    proxy.outage()
    with start_webhook(
        gated_url, db_connect_timeout_seconds=0.5, db_reconnect_timeout_seconds=1.0
    ) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "5"
        down = httpx.post(hook(server, merchant.token), json=payment())
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        assert down.json()["error"] == "database_unavailable"
        assert events(db_url) == []

        proxy.restore()
        try:
            deadline = time.monotonic() + 20
            while httpx.get(f"{server.base_url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the pool did not reconnect"
                time.sleep(0.2)
            up = httpx.post(hook(server, merchant.token), json=payment())
            assert up.status_code == 200
            assert up.json()["status"] == "queued"
        finally:
            proxy.close()
    assert [e["status"] for e in events(db_url)] == ["queued"]


# ---------------------------------------------------------------- card data and logs


def test_card_numbers_are_masked_and_secrets_never_logged(
    db_url: str, merchant: Merchant, server: WebhookServer
) -> None:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        body = payment() | {
            "card": "4111 1111 1111 1111",
            "customFields": "ref 5500-0000-0000-0004 end",
            "nested": {"pan": "378282246310005"},
            "number": 4242424242424242,
        }
        ok = httpx.post(hook(server, merchant.token), json=body)
        bad = httpx.post(
            hook(server, merchant.token), content=b'{"card": "4111111111111111", broken'
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert ok.status_code == 200
    assert bad.status_code == 400
    stored = events(db_url)
    payload = stored[0]["payload"]
    assert payload["card"] == "************1111"
    assert payload["customFields"] == "ref ************0004 end"
    assert payload["nested"] == {"pan": "***********0005"}
    assert payload["number"] == "************4242"
    assert payload["id"] == "4000012345"
    assert stored[1]["raw_body"] == '{"card": "************1111", broken'
    everything = json.dumps([dict(e, received_at=None) for e in stored], default=str)
    # the server's lines only: the test's own httpx client logs its URLs
    logs = "\n".join(
        line
        for line in captured.getvalue().splitlines()
        if not json.loads(line)["logger"].startswith(("httpx", "httpcore"))
    )
    for full in ("4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "37828224631"):
        assert full not in everything
        assert full not in logs
    assert merchant.token not in logs
    lines = [json.loads(line) for line in logs.splitlines() if '"logger": "webhook"' in line]
    assert {line["outcome"] for line in lines} == {"queued", "rejected"}
    assert all({"ts", "level", "msg", "status", "duration_ms", "client"} <= set(x) for x in lines)


# ---------------------------------------------------------------- hostile bodies

_hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "\x00",
            "\ud800",
            "'; drop table app.webhook_events; --",
            '" or 1=1 --',
            "$$; select pg_sleep(10); $$",
            "\\",
            "\u202e\u200b",
            "😀" * 5,
            "4111 1111 1111 1111",
            "1000012345",
            "PaymentSuccess",
            "Deposit",
            "9" * 30,
            "١٢٣",
            "%s %(x)s {}",
        ]
    ),
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | _hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_hostile_text, children),
    max_leaves=12,
)
_keys = st.sampled_from(["eventType", "merchantId", "id"]) | _hostile_text
_objects = st.one_of(
    st.dictionaries(_keys, _json_values, max_size=6),
    st.fixed_dictionaries(
        {
            "eventType": st.sampled_from(["PaymentSuccess", "RefundCreated", "Deposit", ""])
            | _hostile_text,
            "merchantId": st.sampled_from([str(MX_MERCHANT_ID), MX_MERCHANT_ID, "1"]),
            "id": st.integers(min_value=0, max_value=10**20).map(str) | _json_values,
        },
        optional={"extra": _json_values, "card": _hostile_text},
    ),
)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")


_bodies = st.one_of(
    st.builds(_encode, _objects, st.booleans()),
    st.builds(_encode, _json_values, st.booleans()),
    st.binary(max_size=120),
)


def test_hostile_bodies_never_give_5xx(db_url: str, merchant: Merchant) -> None:
    seen: list[int] = []
    with (
        start_webhook(db_url, webhook_rate_per_token=0, webhook_rate_per_address=0) as server,
        httpx.Client() as client,
    ):

        @hsettings(
            max_examples=100,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(body=_bodies)
        def post_hostile(body: bytes) -> None:
            response = client.post(
                hook(server, merchant.token),
                content=body,
                headers={"content-type": "application/json"},
            )
            assert response.status_code in {200, 400, 403, 422}, (body, response.text)
            response.json()
            seen.append(response.status_code)

        post_hostile()

    assert 400 in seen
    rows = events(db_url)
    assert rows
    for row in rows:
        assert row["status"] in {"queued", "ignored", "rejected"}
        if row["status"] == "rejected":
            assert row["reject_reason"]
            assert row["payload"] is not None or row["raw_body"] is not None
        assert "4111 1111 1111 1111" not in json.dumps(row["payload"])
        assert "4111 1111 1111 1111" not in (row["raw_body"] or "")


# ---------------------------------------------------------------- the rest of the surface


def test_health_openapi_and_metrics(merchant: Merchant, server: WebhookServer) -> None:
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/readyz").json() == {"status": "ready"}
    httpx.post(hook(server, merchant.token), json=payment())
    schema = httpx.get(f"{server.base_url}/schema/openapi.json").json()
    operation = schema["paths"]["/webhooks/mx/{token}"]["post"]
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["required"]) == {"eventType", "merchantId"}
    assert {"200", "400", "403", "404", "413", "422", "429", "503"} <= set(operation["responses"])
    # metrics are not on the public port (issue 12, item 8) but on their own loopback address
    assert httpx.get(f"{server.base_url}/metrics").status_code == 404
    assert server.settings.webhook_metrics_host == "127.0.0.1"
    metrics = httpx.get(server.metrics_url)
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'mx_webhook_events_total{event_type="PaymentSuccess",outcome="queued"} 1.0' in (
        metrics.text
    )
    assert "mx_webhook_request_seconds_bucket" in metrics.text
    missing = httpx.get(f"{server.base_url}/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_token_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=1.0, burst=2, max_keys=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    now[0] += 1.0
    assert buckets.take("a") == 0.0
    for key in "bcdef":
        buckets.take(key)
    assert len(buckets) <= 3
    now[0] += 10.0
    buckets.take("g")  # every other bucket has refilled: evicted
    assert len(buckets) == 1
    assert TokenBuckets(rate=0, burst=1).take("x") == 0.0


def test_masking_and_parsing_units() -> None:
    assert mask_card_numbers("4242-4242-4242-4242 and 12345") == "************4242 and 12345"
    assert mask_card_numbers("Aug 11 2025 10:02AM") == "Aug 11 2025 10:02AM"
    parsed = parse_body(b'{"eventType": "Deposit", "merchantId": "1", "x": "\\u0000"}')
    assert (parsed.http_status, parsed.payload) == (400, None)
    assert parse_body(b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}").http_status == 400
