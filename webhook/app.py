"""The Litestar app: ``create_app(settings)``.

``POST /webhooks/mx/{token}``: size check -> per-address rate limit -> parse -> one SQL call
(``private.ingest_webhook``: the per-token rate limit, shared by every process, then record
and queue) -> status. ``/healthz``, ``/readyz`` and the OpenAPI schema
(``/schema/openapi.json``) beside it. Prometheus ``/metrics`` is served on an address of its
own (``WEBHOOK_METRICS_HOST``/``WEBHOOK_METRICS_PORT``, loopback by default), never on the
public port. The psycopg pool and the metrics endpoint belong to the app lifespan; the pool
is opened without waiting, so the app starts while the database is down and recovers when it
comes back.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

import psycopg
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import PathParameter
from litestar.types import ExceptionHandlersMap
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as prometheus_text
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from common.db_pool import make_pool
from common.masking import mask_card_numbers
from common.metrics_server import MetricsServer, start_metrics_server
from webhook.payload import MxWebhookPayload, event_type_label, parse_body
from webhook.ratelimit import TokenBuckets, token_key
from webhook.settings import Settings

log = logging.getLogger("webhook")

INGEST_SQL: Final = (
    "select outcome, event_id, retry_after_seconds"
    " from private.ingest_webhook(%s, %s, %s, %s, %s, %s, %s)"
)
# Pooled connections idle at least this long are checked (a round trip) before use.
POOL_CHECK_AFTER_IDLE_SECONDS: Final = 1.0


# ---------------------------------------------------------------- response bodies


class AcceptedBody(BaseModel):
    """The event is recorded (and queued when it is a new payment event)."""

    status: str = Field(description="queued, duplicate or ignored", examples=["queued"])
    event_id: int = Field(description="app.webhook_events.id")
    duplicate: bool = Field(description="True when this event was already recorded")


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(examples=["unknown_token"])
    message: str = Field(examples=["no active merchant account has this callback URL"])


# ---------------------------------------------------------------- metrics


class Metrics:
    """Prometheus metrics in a registry of their own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "mx_webhook_events",
            "Webhook requests by outcome and (bounded) MX event type.",
            ["outcome", "event_type"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "mx_webhook_request_seconds",
            "Time to answer a webhook request, seconds.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )

    def render(self) -> bytes:
        return prometheus_text(self.registry)


# ---------------------------------------------------------------- OpenAPI helpers


_SCHEMA_FIELDS: Final = {
    (f.metadata.get("alias") or f.name): f.name for f in dataclasses.fields(Schema)
}


def _openapi_schema(node: Any) -> Any:
    """Convert a pydantic JSON schema (dict) into Litestar's OpenAPI ``Schema`` objects."""
    if isinstance(node, list):
        return [_openapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return Reference(ref=node["$ref"].replace("#/$defs/", "#/components/schemas/"))
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        name = _SCHEMA_FIELDS.get(key)
        if name is None:
            continue
        if name == "type":
            kwargs[name] = (
                [OpenAPIType(v) for v in value] if isinstance(value, list) else OpenAPIType(value)
            )
        elif name in ("properties", "pattern_properties"):
            kwargs[name] = {k: _openapi_schema(v) for k, v in value.items()}
        elif name in ("examples", "enum", "required", "default", "const", "example"):
            kwargs[name] = value
        else:
            kwargs[name] = _openapi_schema(value)
    return Schema(**kwargs)


# Inlined in the operation: Litestar rebuilds components.schemas from its own registry.
_PAYLOAD_SCHEMA: Final = _openapi_schema(
    MxWebhookPayload.model_json_schema(by_alias=True, mode="validation")
)


@dataclasses.dataclass
class _WebhookOperation(Operation):
    """Documents the raw-bytes webhook body with the pydantic payload model."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_PAYLOAD_SCHEMA)},
            description="The MX Merchant notification, a flat JSON object of strings.",
            required=True,
        )


def _error_spec(description: str, retry_after: bool = False) -> ResponseSpec:
    suffix = " Carries a Retry-After header (seconds)." if retry_after else ""
    return ResponseSpec(data_container=ErrorBody, description=description + suffix)


# ---------------------------------------------------------------- helpers


def _json(
    status: int, content: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(content, status_code=status, media_type=MediaType.JSON, headers=headers)


def _error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return _json(status, {"error": error, "message": message}, headers)


def _client_address(request: Request[Any, Any, State]) -> str:
    return request.client.host if request.client and request.client.host else "unknown"


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request[Any, Any, State], limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


def _db_error_fields(exc: BaseException) -> dict[str, Any]:
    """Log-safe description of a database error (type and SQLSTATE, never parameters)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return {"error_type": type(exc).__name__, "sqlstate": sqlstate}


# ---------------------------------------------------------------- the app


@dataclasses.dataclass
class Runtime:
    """What the handlers share; the pool is set by the lifespan."""

    settings: Settings
    limiter: TokenBuckets
    metrics: Metrics
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
    metrics_server: MetricsServer | None = None


class _CheckWhenIdle:
    """Check a pooled connection before use only when it has not been used for a while.

    A check is a round trip (~10% of a webhook's time under load). A connection handed out
    less than ``idle_seconds`` ago was working then; one idle longer may have been cut (a
    Postgres restart, an idle timeout) and is checked, and replaced if dead. A connection that
    dies inside the window fails its one request with a 503 (MX retries it) and the pool
    discards it on return. (The time is taken when the pool hands the connection out, so no
    ``reset`` callback is needed: with one, psycopg_pool returns every connection through a
    background task.)
    """

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._handed_out_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        last = self._handed_out_at.get(conn)
        if last is None or now - last >= self.idle_seconds:
            await AsyncConnectionPool.check_connection(conn)
        self._handed_out_at[conn] = now


def _make_pool(settings: Settings) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    # autocommit: the one call is its own transaction, committed on return
    return make_pool(
        settings,
        name="mx-webhook",
        check=_CheckWhenIdle(POOL_CHECK_AFTER_IDLE_SECONDS),
        reconnect_timeout=settings.db_reconnect_timeout_seconds,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


def create_app(settings: Settings) -> Litestar:
    """Build the webhook app; the connection pool opens with the app's lifespan."""
    runtime = Runtime(
        settings=settings,
        limiter=TokenBuckets(
            settings.webhook_rate_per_address,
            settings.webhook_burst_per_address,
            settings.webhook_rate_limit_max_keys,
        ),
        metrics=Metrics(),
    )
    retry_after = {"Retry-After": str(settings.webhook_retry_after_seconds)}

    @asynccontextmanager
    async def pool_lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = _make_pool(settings)
        await pool.open(wait=False)  # start even when the database is down
        runtime.pool = pool
        app.state.pool = pool
        # each server process serves its own metrics, on the first free port of its range
        runtime.metrics_server = start_metrics_server(
            runtime.metrics.registry,
            settings.webhook_metrics_port,
            settings.webhook_metrics_host,
            tries=settings.webhook_workers,
            service="webhook",
        )
        try:
            yield
        finally:
            runtime.pool = None
            if runtime.metrics_server is not None:
                runtime.metrics_server.close()
                runtime.metrics_server = None
            await pool.close(timeout=2.0)

    def unavailable(message: str) -> Response[dict[str, Any]]:
        return _error(503, "database_unavailable", message, retry_after)

    def rate_limited(wait: float) -> Response[dict[str, Any]]:
        seconds = max(1, math.ceil(wait))
        return _error(
            429,
            "rate_limited",
            f"too many requests; retry in {seconds} s",
            {"Retry-After": str(seconds)},
        )

    @post(
        "/webhooks/mx/{token:str}",
        status_code=200,
        request_max_body_size=None,  # checked by _read_body against the setting
        operation_class=_WebhookOperation,
        summary="Receive an MX Merchant notification",
        description=(
            "The per-merchant token in the URL authenticates the caller (MX signs nothing). "
            "The event is recorded, deduplicated and, for payment events, queued in one "
            "transaction. A 2xx is only sent once the record is committed."
        ),
        responses={
            400: _error_spec("Body is not JSON or not a JSON object (stored as rejected)."),
            403: _error_spec("merchantId does not match the token's account (stored)."),
            404: _error_spec("Unknown or retired token (nothing stored)."),
            413: _error_spec("Body larger than WEBHOOK_MAX_BODY_BYTES."),
            422: _error_spec("Required fields missing or invalid (stored as rejected)."),
            429: _error_spec(
                "Rate limited (per client address, or per token across every process).",
                retry_after=True,
            ),
            503: _error_spec("Database unavailable; retry later.", retry_after=True),
        },
        tags=["webhooks"],
    )
    async def receive_webhook(
        request: Request[Any, Any, State],
        token: Annotated[
            str, PathParameter(description="The merchant's secret callback token (authenticates).")
        ],
    ) -> Response[AcceptedBody]:
        started = time.perf_counter()
        fields: dict[str, Any] = {
            "client": _client_address(request),
            "token_hash": token_key(token)[:8],
        }
        outcome = "error"
        event_type_seen: str | None = None
        response: Response[Any]
        try:
            response, outcome, event_type_seen = await _handle(request, token, fields)
            return response
        finally:
            elapsed = time.perf_counter() - started
            runtime.metrics.request_seconds.observe(elapsed)
            runtime.metrics.events.labels(outcome, event_type_label(event_type_seen)).inc()
            fields["outcome"] = outcome
            fields["duration_ms"] = round(elapsed * 1000, 2)
            # the caller's mistakes are recorded and answered: info; these deserve a look
            alarming = outcome in ("unknown_token", "unavailable", "error")
            level = logging.WARNING if alarming else logging.INFO
            log.log(level, "webhook %s", outcome, extra={"fields": fields})

    async def _handle(
        request: Request[Any, Any, State], token: str, fields: dict[str, Any]
    ) -> tuple[Response[Any], str, str | None]:
        def done(
            response: Response[Any], outcome: str, event_type: str | None = None
        ) -> tuple[Response[Any], str, str | None]:
            fields["status"] = response.status_code
            return response, outcome, event_type

        try:
            body = await _read_body(request, settings.webhook_max_body_bytes)
        except _BodyTooLarge:
            limit = settings.webhook_max_body_bytes
            return done(
                _error(413, "body_too_large", f"body is larger than {limit} bytes"), "too_large"
            )

        wait = runtime.limiter.take(fields["client"])
        if wait > 0:
            return done(rate_limited(wait), "rate_limited")

        parsed = parse_body(body)
        event_type = parsed.event_type
        fields["event_type"] = event_type
        fields["mx_merchant_id"] = parsed.mx_merchant_id
        fields["payment_id"] = parsed.payment_id
        fields["bytes"] = len(body)
        if parsed.problem is not None:
            fields["problem"] = parsed.problem

        pool = runtime.pool
        if pool is None:
            return done(unavailable("the service is starting or stopping"), "unavailable")
        try:
            async with pool.connection(timeout=settings.db_connect_timeout_seconds) as conn:
                cursor = await conn.execute(
                    INGEST_SQL,
                    (
                        token,
                        Jsonb(parsed.payload) if parsed.payload is not None else None,
                        parsed.raw_body,
                        parsed.problem,
                        settings.webhook_rate_per_token,
                        settings.webhook_burst_per_token,
                        settings.webhook_rejects_per_hour,
                    ),
                )
                row = await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            fields.update(_db_error_fields(exc))
            return done(unavailable("the database is unavailable; retry later"), "unavailable")
        if row is None:  # the function always returns one row
            raise RuntimeError("private.ingest_webhook returned no row")
        outcome, event_id = str(row[0]), row[1]
        fields["event_id"] = event_id

        if outcome == "rate_limited":  # the token's shared bucket is empty: nothing stored
            response = rate_limited(float(row[2] or 1.0))
        elif outcome == "unknown_token":
            response = _error(
                404, "unknown_token", "no active merchant account has this callback URL"
            )
        elif outcome == "merchant_mismatch":
            response = _error(
                403, "merchant_mismatch", "merchantId does not belong to this callback URL"
            )
        elif outcome == "rejected":
            status = parsed.http_status if parsed.problem is not None else 422
            message = parsed.problem or "payment event without a numeric payment id in id"
            error = "invalid_body" if status == 400 else "invalid_payload"
            response = _error(status, error, message)
        elif outcome in ("queued", "duplicate", "ignored"):
            response = _json(
                200,
                {"status": outcome, "event_id": event_id, "duplicate": outcome == "duplicate"},
            )
        else:
            raise RuntimeError(f"unexpected ingest outcome {outcome!r}")
        return done(response, outcome, event_type)

    @get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        tags=["operations"],
        summary="The database answers",
        responses={503: _error_spec("Database unavailable.", retry_after=True)},
    )
    async def readyz() -> Response[dict[str, Any]]:
        pool = runtime.pool
        if pool is None:
            return unavailable("the service is starting or stopping")
        try:
            async with pool.connection(timeout=settings.db_connect_timeout_seconds) as conn:
                await conn.execute("select 1")
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            log.warning("not ready", extra={"fields": _db_error_fields(exc)})
            return unavailable("the database is unavailable")
        return _json(200, {"status": "ready"})

    def http_error(request: Request[Any, Any, State], exc: HTTPException) -> Response[Any]:
        slug = re.sub(r"[^a-z]+", "_", (exc.detail or "error").lower()).strip("_") or "error"
        return _error(exc.status_code, slug, exc.detail, exc.headers)

    def internal_error(request: Request[Any, Any, State], exc: Exception) -> Response[Any]:
        log.error(
            "unhandled error",
            extra={
                "fields": {
                    "error_type": type(exc).__name__,
                    "error": mask_card_numbers(str(exc))[:200],
                    "path": re.sub(r"/webhooks/mx/[^/]+", "/webhooks/mx/***", request.url.path),
                }
            },
        )
        return _error(500, "internal_error", "internal error; the event was not recorded")

    exception_handlers: ExceptionHandlersMap = {
        HTTPException: http_error,
        Exception: internal_error,
    }
    return Litestar(
        route_handlers=[receive_webhook, healthz, readyz],
        lifespan=[pool_lifespan],
        exception_handlers=exception_handlers,
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="MX Merchant webhook receiver",
            version="1.0.0",
            description="Receives MX Merchant notifications and queues them for the worker.",
        ),
        state=State({"runtime": runtime}),
    )
