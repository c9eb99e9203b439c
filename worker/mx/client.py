"""Async MX Merchant REST client (httpx).

One :class:`MxClient` owns its httpx connection pool (a few ``httpx.AsyncClient`` shards of
8 connections, chosen by merchant id, for throughput); credentials are passed per call (HTTP
Basic), because the worker serves many merchants with different API keys. The client never
retries: it classifies failures into :class:`MxTransientError` (try again later) and
:class:`MxPermanentError` (do not retry), and callers decide.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import ValidationError

from worker import metrics
from worker.mx.models import (
    MxContract,
    MxErrorBody,
    MxInvoice,
    MxList,
    MxMerchant,
    MxModel,
    MxPayment,
    MxSubscription,
)

__all__ = [
    "DEFAULT_SOURCES",
    "PRODUCTION_BASE_URL",
    "SANDBOX_BASE_URL",
    "MxClient",
    "MxCredentials",
    "MxError",
    "MxPermanentError",
    "MxTransientError",
    "PermanentKind",
    "SubscriptionResult",
    "base_url_for",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

PRODUCTION_BASE_URL = "https://api.mxmerchant.com/checkout/v3"
SANDBOX_BASE_URL = "https://sandbox.api.mxmerchant.com/checkout/v3"
# Every payment source MX Merchant offers a subscription (a source left out is only seen at the
# next reconcile): QuickPay, Customer (portal), Invoice, Recurring, Order, MXExpress, MXRetail,
# API, Terminal, Rekey.
DEFAULT_SOURCES = "QuickPay,Customer,Invoice,Recurring,Order,MXExpress,MXRetail,API,Terminal,Rekey"

PermanentKind = Literal[
    "not_found", "invalid_credentials", "unauthorized", "validation", "bad_response"
]

M = TypeVar("M", bound=MxModel)

_SHARD_SIZE = 8


def base_url_for(environment: str, override: str | None = None) -> str:
    """The API base URL: ``override`` if set, else by environment (``production``/``prod``/
    ``live`` or ``sandbox``/``test``)."""
    if override:
        return override.rstrip("/")
    env = environment.strip().lower()
    if env in ("production", "prod", "live"):
        return PRODUCTION_BASE_URL
    if env in ("sandbox", "test", "staging"):
        return SANDBOX_BASE_URL
    raise ValueError(f"unknown MX environment {environment!r} (use 'production' or 'sandbox')")


@dataclass(frozen=True, slots=True)
class MxCredentials:
    """An MX API key pair, and the API base of the merchant's environment (``None``: the
    client's base URL). The secret never appears in ``repr``/``str``."""

    consumer_key: str
    consumer_secret: str = field(repr=False)
    base_url: str | None = None

    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.consumer_key, self.consumer_secret)


class MxError(Exception):
    """Base class of the client's errors."""

    status: int | None
    message: str


class MxTransientError(MxError):
    """Timeouts, connection errors, 429, 5xx: retry later (after ``retry_after`` seconds if
    the server said so)."""

    def __init__(self, status: int | None, retry_after: float | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.message = message

    def __repr__(self) -> str:
        return (
            f"MxTransientError(status={self.status!r}, retry_after={self.retry_after!r}, "
            f"message={self.message!r})"
        )


class MxPermanentError(MxError):
    """A failure a retry will not fix: ``kind`` is ``not_found``, ``invalid_credentials``,
    ``unauthorized``, ``validation`` or ``bad_response`` (a 2xx body that did not parse)."""

    def __init__(
        self,
        kind: PermanentKind,
        status: int | None,
        message: str,
        *,
        body: MxErrorBody | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: PermanentKind = kind
        self.status = status
        self.message = message
        self.body = body

    def __repr__(self) -> str:
        return (
            f"MxPermanentError(kind={self.kind!r}, status={self.status!r}, "
            f"message={self.message!r})"
        )


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """Outcome of :meth:`MxClient.put_subscription`: ``created`` or ``duplicate`` (MX already
    had the same subscription; counts as success)."""

    outcome: Literal["created", "duplicate"]
    event_type: str
    status: int
    subscription: MxSubscription | None = None

    @property
    def ok(self) -> bool:
        return True


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP-date; ``None`` if absent or
    unreadable. Never negative."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN guard
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _error_body(response: httpx.Response) -> MxErrorBody | None:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return MxErrorBody.model_validate(data)
    except ValidationError:
        return None


def _describe(body: MxErrorBody | None, response: httpx.Response) -> str:
    if body is not None and (body.error_code or body.message):
        parts = [p for p in (body.error_code, body.message) if p]
        text = ": ".join(parts)
        if body.details:
            text += " (" + "; ".join(body.details) + ")"
        return text
    snippet = response.text[:200] if response.content else ""
    return f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")


def _classify(response: httpx.Response, what: str) -> MxError:
    status = response.status_code
    body = _error_body(response)
    desc = f"{what}: {_describe(body, response)}"
    code = (body.error_code or "") if body is not None else ""
    if status == 429 or status >= 500 or status == 408:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return MxTransientError(status, retry_after, desc)
    if code == "InvalidCredentials":
        return MxPermanentError("invalid_credentials", status, desc, body=body)
    if code == "Unauthorized":
        return MxPermanentError("unauthorized", status, desc, body=body)
    if status == 401:
        return MxPermanentError("invalid_credentials", status, desc, body=body)
    if status == 403:
        return MxPermanentError("unauthorized", status, desc, body=body)
    if status == 404:
        return MxPermanentError("not_found", status, desc, body=body)
    return MxPermanentError("validation", status, desc, body=body)


class MxClient:
    """Async client for the MX Merchant checkout v3 API.

    ``total_timeout`` is a hard deadline for one HTTP exchange (after a concurrency slot is
    obtained), enforced with ``asyncio.timeout`` on top of httpx's connect/read timeouts, so a
    server that trickles bytes or hangs cannot hold the caller longer than that.
    ``per_merchant_concurrency`` caps simultaneous requests per merchant id;
    ``max_connections`` caps them overall (the httpx pool size).
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        total_timeout: float = 30.0,
        per_merchant_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 32,
        user_agent: str = "mx-memberships-worker/0.1",
    ) -> None:
        if per_merchant_concurrency < 1:
            raise ValueError("per_merchant_concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.total_timeout = total_timeout
        self.per_merchant_concurrency = per_merchant_concurrency
        # pool waits are bounded by our own semaphore and the total deadline
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=total_timeout
        )
        self.max_connections = max(1, max_connections)
        self._transport = transport
        # httpcore's pool does O(pool size) work per request (it polls every idle connection),
        # so several small pools beat one big one: ~3x the throughput at 32 in flight. With an
        # injected transport there is one pool.
        shards = 1 if transport is not None else -(-self.max_connections // _SHARD_SIZE)
        per_shard = -(-self.max_connections // shards)
        self._limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._n_shards = shards
        self._user_agent = user_agent
        self._shards: list[httpx.AsyncClient] = []
        self._semaphores: dict[int, asyncio.Semaphore] = {}
        self._global: asyncio.Semaphore | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        if not self._shards:
            self._shards = [
                httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=self._timeout,
                    transport=self._transport,
                    limits=self._limits,
                    headers={"Accept": "application/json", "User-Agent": self._user_agent},
                    follow_redirects=False,
                )
                for _ in range(self._n_shards)
            ]

    async def aclose(self) -> None:
        shards, self._shards = self._shards, []
        for http in shards:
            await http.aclose()

    def _semaphore(self, merchant_id: int) -> asyncio.Semaphore:
        sem = self._semaphores.get(merchant_id)
        if sem is None:
            sem = asyncio.Semaphore(self.per_merchant_concurrency)
            self._semaphores[merchant_id] = sem
        return sem

    # -- transport ---------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        creds: MxCredentials,
        merchant_id: int,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        if not self._shards:
            raise RuntimeError("MxClient is not open; use 'async with MxClient(...)'")
        http = self._shards[merchant_id % len(self._shards)]
        what = f"{method} {path}"
        if self._global is None:
            self._global = asyncio.Semaphore(self.max_connections)
        # Queue here, not inside httpcore: its pool rescans every queued request on each
        # state change, which costs O(queued x connections) per request under load.
        # the timing starts once both slots are held: MX's latency, not our queueing
        async with (
            self._semaphore(merchant_id),
            self._global,
            metrics.MxTiming(method, path) as timing,
        ):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.total_timeout):
                    # an absolute URL (the merchant's environment) overrides the client's base
                    url = f"{creds.base_url.rstrip('/')}{path}" if creds.base_url else path
                    response = await http.request(
                        method, url, params=params, json=json_body, auth=creds.auth()
                    )
            except TimeoutError as exc:
                log.warning(
                    "mx request exceeded total timeout",
                    extra={"method": method, "path": path, "merchant_id": merchant_id},
                )
                raise MxTransientError(
                    None, None, f"{what}: no complete answer within {self.total_timeout}s"
                ) from exc
            except httpx.TimeoutException as exc:
                raise MxTransientError(None, None, f"{what}: {type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise MxTransientError(None, None, f"{what}: {type(exc).__name__}: {exc}") from exc
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            timing.status = response.status_code
        log.debug(
            "mx request",
            extra={
                "method": method,
                "path": path,
                "merchant_id": merchant_id,
                "status": response.status_code,
                "elapsed_ms": elapsed_ms,
            },
        )
        if not response.is_success:
            raise _classify(response, what)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise MxPermanentError(
                "bad_response",
                response.status_code,
                f"{what}: body is not JSON ({exc}): {response.text[:200]!r}",
            ) from exc

    @classmethod
    def _parse(cls, model: type[M], response: httpx.Response, what: str) -> M:
        data = cls._json(response, what)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors(include_url=False)[:10]
            )
            raise MxPermanentError(
                "bad_response",
                response.status_code,
                f"{what}: response does not match {model.__name__}: {problems}",
            ) from exc

    async def _get(
        self,
        model: type[M],
        path: str,
        creds: MxCredentials,
        merchant_id: int,
        params: Mapping[str, str | int] | None = None,
    ) -> M:
        response = await self._request("GET", path, creds, merchant_id, params=params)
        return self._parse(model, response, f"GET {path}")

    # -- endpoints ---------------------------------------------------------------------------

    async def get_payment(
        self, creds: MxCredentials, merchant_id: int, payment_id: int
    ) -> MxPayment:
        """``GET /payment/{id}``: the authoritative payment (with ``invoiceIds``)."""
        return await self._get(MxPayment, f"/payment/{int(payment_id)}", creds, merchant_id)

    async def get_invoice(
        self, creds: MxCredentials, merchant_id: int, invoice_id: int
    ) -> MxInvoice:
        """``GET /invoice/{id}`` with every purchase line."""
        return await self._get(MxInvoice, f"/invoice/{int(invoice_id)}", creds, merchant_id)

    async def get_contract(
        self, creds: MxCredentials, merchant_id: int, contract_id: int
    ) -> MxContract:
        """``GET /contract/{id}``."""
        return await self._get(MxContract, f"/contract/{int(contract_id)}", creds, merchant_id)

    async def get_merchant(self, creds: MxCredentials, merchant_id: int) -> MxMerchant:
        """``GET /merchant/{id}`` (``timezoneOffset``, ``daylightSaving``)."""
        return await self._get(MxMerchant, f"/merchant/{int(merchant_id)}", creds, merchant_id)

    async def list_payments(
        self,
        creds: MxCredentials,
        merchant_id: int,
        limit: int = 100,
        offset: int = 0,
        start_date: date | datetime | str | None = None,
        end_date: date | datetime | str | None = None,
    ) -> MxList[MxPayment]:
        """``GET /payment?merchantId=&limit=&offset=`` (newest first; records lack
        ``invoiceIds``). ``startDate``/``endDate`` are undocumented filters; dates are sent as
        ``YYYY-MM-DD``, datetimes as ISO-8601."""
        params: dict[str, str | int] = {
            "merchantId": int(merchant_id),
            "limit": int(limit),
            "offset": int(offset),
        }
        if start_date is not None:
            params["startDate"] = _date_param(start_date)
        if end_date is not None:
            params["endDate"] = _date_param(end_date)
        return await self._get(MxList[MxPayment], "/payment", creds, merchant_id, params)

    async def list_contracts(
        self,
        creds: MxCredentials,
        merchant_id: int,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> MxList[MxContract]:
        """``GET /contract?merchantId=&status=&limit=&offset=`` (MX serves at most 100)."""
        params: dict[str, str | int] = {
            "merchantId": int(merchant_id),
            "limit": int(limit),
            "offset": int(offset),
        }
        if status:
            params["status"] = status
        return await self._get(MxList[MxContract], "/contract", creds, merchant_id, params)

    async def list_contract_payments(
        self,
        creds: MxCredentials,
        merchant_id: int,
        contract_id: int,
        limit: int = 100,
        offset: int = 0,
    ) -> MxList[MxPayment]:
        """``GET /contract/payment?id=&limit=&offset=``: the payments of one contract."""
        params: dict[str, str | int] = {
            "id": int(contract_id),
            "limit": int(limit),
            "offset": int(offset),
        }
        return await self._get(MxList[MxPayment], "/contract/payment", creds, merchant_id, params)

    async def put_subscription(
        self,
        creds: MxCredentials,
        merchant_id: int,
        event_type: str,
        callback_url: str,
        sources: str = DEFAULT_SOURCES,
    ) -> SubscriptionResult:
        """``PUT /subscription`` for one event type. A ``ValidationError`` whose details say
        "Duplicate notification" is reported as ``outcome="duplicate"`` (success)."""
        body = {
            "eventType": event_type,
            "merchantId": int(merchant_id),
            "sendWebhook": True,
            "callbackUrl": callback_url,
            "sources": sources,
            "threshold": 0,
            "sendEmail": False,
            "emailAddress": "",
            "sendSMS": False,
            "phoneNumber": "",
        }
        try:
            response = await self._request(
                "PUT", "/subscription", creds, merchant_id, json_body=body
            )
        except MxPermanentError as exc:
            if exc.kind == "validation" and _is_duplicate(exc):
                return SubscriptionResult("duplicate", event_type, exc.status or 400)
            raise
        subscription: MxSubscription | None = None
        if response.content.strip():
            data = self._json(response, "PUT /subscription")
            if isinstance(data, dict) and data:
                try:
                    subscription = MxSubscription.model_validate(data)
                except ValidationError:
                    subscription = None
        return SubscriptionResult("created", event_type, response.status_code, subscription)

    async def list_subscriptions(
        self, creds: MxCredentials, merchant_id: int
    ) -> list[MxSubscription]:
        """``GET /subscription?merchantId=``; accepts a bare list or a ``{records}`` page."""
        response = await self._request(
            "GET", "/subscription", creds, merchant_id, params={"merchantId": int(merchant_id)}
        )
        data = self._json(response, "GET /subscription")
        items: Any = data.get("records", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise MxPermanentError(
                "bad_response", response.status_code, "GET /subscription: not a list or a page"
            )
        try:
            return [MxSubscription.model_validate(item) for item in items]
        except ValidationError as exc:
            raise MxPermanentError(
                "bad_response", response.status_code, f"GET /subscription: {exc}"
            ) from exc

    async def delete_subscription(
        self, creds: MxCredentials, merchant_id: int, subscription_id: int
    ) -> None:
        """``DELETE /subscription/{id}``."""
        await self._request("DELETE", f"/subscription/{int(subscription_id)}", creds, merchant_id)


def _is_duplicate(exc: MxPermanentError) -> bool:
    texts: list[str] = [exc.message]
    if exc.body is not None:
        texts.extend(exc.body.details)
        if exc.body.message:
            texts.append(exc.body.message)
    return any("duplicate notification" in t.lower() for t in texts)


def _date_param(value: date | datetime | str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
