"""The MX Merchant stand-in as an ASGI app (served by uvicorn).

API under ``/checkout/v3`` (HTTP Basic auth, MX shapes and error bodies), control API under
``/_standin`` (no auth, JSON). See ``mxstandin/__init__.py`` for the endpoint list.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from mxstandin.state import API_PREFIX, StandinError, StandinState

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CONTROL_PREFIX = "/_standin"
HANG_MAX_SECONDS = 600.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise StandinError(
                400, "ValidationError", "Request body is not valid JSON", [str(exc)]
            ) from exc


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[StandinState, Request], Response]


def _int_param(value: str | None, name: str, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise StandinError(400, "ValidationError", "Validation failed", [f"{name} is required"])
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise StandinError(
            400, "ValidationError", "Validation failed", [f"{name} must be an integer"]
        ) from exc


def _date_param(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise StandinError(
            400, "ValidationError", "Validation failed", [f"bad date {value!r}"]
        ) from exc


def _credentials(headers: dict[str, str]) -> tuple[str | None, str | None]:
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    key, sep, secret = decoded.partition(":")
    return (key, secret) if sep else (None, None)


# ------------------------------------------------------------------------------------------
# API handlers (/checkout/v3)
# ------------------------------------------------------------------------------------------


def _auth(state: StandinState, req: Request) -> Any:
    key, secret = _credentials(req.headers)
    return state.authenticate(key, secret)


def h_get_payment(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    return Response(200, state.api_get_payment(cred, int(req.params["id"])))


def h_list_payments(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    q = req.query
    mid = _int_param(q.get("merchantId"), "merchantId")
    limit = max(0, min(_int_param(q.get("limit"), "limit", 25), 100))
    offset = max(0, _int_param(q.get("offset"), "offset", 0))
    body = state.api_list_payments(
        cred, mid, limit, offset, _date_param(q.get("startDate")), _date_param(q.get("endDate"))
    )
    return Response(200, body)


def h_get_invoice(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    return Response(200, state.api_get_invoice(cred, int(req.params["id"])))


def h_list_contracts(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    q = req.query
    mid = _int_param(q.get("merchantId"), "merchantId")
    limit = max(0, _int_param(q.get("limit"), "limit", 25))
    offset = max(0, _int_param(q.get("offset"), "offset", 0))
    return Response(200, state.api_list_contracts(cred, mid, q.get("status"), limit, offset))


def h_get_contract(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    return Response(200, state.api_get_contract(cred, int(req.params["id"])))


def h_contract_payments(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    q = req.query
    cid = _int_param(q.get("id"), "id")
    limit = max(0, min(_int_param(q.get("limit"), "limit", 25), 100))
    offset = max(0, _int_param(q.get("offset"), "offset", 0))
    return Response(200, state.api_list_contract_payments(cred, cid, limit, offset))


def h_get_merchant(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    return Response(200, state.api_get_merchant(cred, int(req.params["id"])))


def h_put_subscription(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    state.api_put_subscription(cred, req.json())
    return Response(201, None)


def h_list_subscriptions(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    mid = req.query.get("merchantId")
    return Response(200, state.api_list_subscriptions(cred, int(mid) if mid else None))


def h_delete_subscription(state: StandinState, req: Request) -> Response:
    cred = _auth(state, req)
    state.api_delete_subscription(cred, int(req.params["id"]))
    return Response(204, None)


# ------------------------------------------------------------------------------------------
# control handlers (/_standin)
# ------------------------------------------------------------------------------------------


def _body(req: Request) -> dict[str, Any]:
    data = req.json()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def c_merchants(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(
        200,
        state.create_merchant(
            merchant_id=b.get("merchant_id"),
            name=b.get("name"),
            consumer_key=b.get("consumer_key"),
            consumer_secret=b.get("consumer_secret"),
            timezone_offset=b.get("timezone_offset", "-8:00"),
            daylight_saving=bool(b.get("daylight_saving", True)),
        ),
    )


def c_customers(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(
        200, state.create_customer(int(b["merchant_id"]), b.get("name"), b.get("number"))
    )


def c_sales(state: StandinState, req: Request) -> Response:
    b = _body(req)
    result = state.create_sale(
        merchant_id=int(b["merchant_id"]),
        customer_id=b.get("customer_id"),
        lines=b.get("lines"),
        source=b.get("source"),
        declined=bool(b.get("declined", False)),
        contract=b.get("contract"),
        contract_id=b.get("contract_id"),
        created=b.get("created"),
        tax=b.get("tax", "0"),
        with_invoice=bool(b.get("with_invoice", True)),
        extra_lines=b.get("extra_lines"),
    )
    return Response(200, result)


def c_refunds(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(
        200, state.create_refund(int(b["payment_id"]), b.get("amount"), b.get("created"))
    )


def c_payment_status(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(200, state.set_payment_status(int(req.params["id"]), str(b["status"])))


def c_contract_status(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(200, state.set_contract_status(int(req.params["id"]), str(b["status"])))


def c_webhook(state: StandinState, req: Request) -> Response:
    return Response(
        200, state.webhook_for(int(req.params["id"]), req.query.get("event_type") or None)
    )


def c_add_fault(state: StandinState, req: Request) -> Response:
    return Response(200, state.add_fault(_body(req)))


def c_clear_faults(state: StandinState, req: Request) -> Response:
    state.clear_faults()
    return Response(200, {"cleared": True})


def c_config(state: StandinState, req: Request) -> Response:
    b = _body(req)
    return Response(200, state.configure(b.get("latency_ms"), b.get("seed")))


def c_counters(state: StandinState, req: Request) -> Response:
    return Response(200, state.read_counters(reset=req.query.get("reset") in ("1", "true")))


def c_reset(state: StandinState, req: Request) -> Response:
    b = _body(req)
    state.reset(b.get("seed"))
    return Response(200, {"reset": True})


def c_subscriptions(state: StandinState, req: Request) -> Response:
    return Response(200, state.subscriptions_for(int(req.params["id"])))


def c_sink_post(state: StandinState, req: Request) -> Response:
    count = state.sink_add(req.params["name"], req.json())
    status = int(req.query.get("status", "200"))
    return Response(status, {"received": count})


def c_sink_get(state: StandinState, req: Request) -> Response:
    return Response(200, state.sink_read(req.params["name"]))


def c_health(state: StandinState, req: Request) -> Response:
    return Response(200, {"ok": True})


_ID = r"(?P<id>-?\d+)"
ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = []


def _route(method: str, pattern: str, name: str, handler: Handler) -> None:
    ROUTES.append((method, re.compile("^" + pattern + "$"), name, handler))


for _m, _p, _h in [
    ("GET", rf"{API_PREFIX}/payment/{_ID}", h_get_payment),
    ("GET", rf"{API_PREFIX}/payment", h_list_payments),
    ("GET", rf"{API_PREFIX}/invoice/{_ID}", h_get_invoice),
    ("GET", rf"{API_PREFIX}/contract/payment", h_contract_payments),
    ("GET", rf"{API_PREFIX}/contract/{_ID}", h_get_contract),
    ("GET", rf"{API_PREFIX}/contract", h_list_contracts),
    ("GET", rf"{API_PREFIX}/merchant/{_ID}", h_get_merchant),
    ("PUT", rf"{API_PREFIX}/subscription", h_put_subscription),
    ("GET", rf"{API_PREFIX}/subscription", h_list_subscriptions),
    ("DELETE", rf"{API_PREFIX}/subscription/{_ID}", h_delete_subscription),
    ("POST", rf"{CONTROL_PREFIX}/merchants", c_merchants),
    ("POST", rf"{CONTROL_PREFIX}/customers", c_customers),
    ("POST", rf"{CONTROL_PREFIX}/sales", c_sales),
    ("POST", rf"{CONTROL_PREFIX}/refunds", c_refunds),
    ("POST", rf"{CONTROL_PREFIX}/payments/{_ID}/status", c_payment_status),
    ("POST", rf"{CONTROL_PREFIX}/contracts/{_ID}/status", c_contract_status),
    ("GET", rf"{CONTROL_PREFIX}/payments/{_ID}/webhook", c_webhook),
    ("POST", rf"{CONTROL_PREFIX}/faults", c_add_fault),
    ("DELETE", rf"{CONTROL_PREFIX}/faults", c_clear_faults),
    ("POST", rf"{CONTROL_PREFIX}/config", c_config),
    ("GET", rf"{CONTROL_PREFIX}/counters", c_counters),
    ("POST", rf"{CONTROL_PREFIX}/reset", c_reset),
    ("GET", rf"{CONTROL_PREFIX}/merchants/{_ID}/subscriptions", c_subscriptions),
    ("GET", rf"{CONTROL_PREFIX}/health", c_health),
    ("POST", rf"{CONTROL_PREFIX}/sink/(?P<name>[A-Za-z0-9_.-]+)", c_sink_post),
    ("GET", rf"{CONTROL_PREFIX}/sink/(?P<name>[A-Za-z0-9_.-]+)", c_sink_get),
]:
    _route(_m, _p, _p.replace(_ID, "{id}").replace(API_PREFIX, ""), _h)


def _mx_error(status: int, code: str, message: str, details: list[str] | None = None) -> Response:
    return Response(
        status,
        {
            "errorCode": code,
            "message": message,
            "details": details or [],
            "responseCode": str(status),
        },
    )


class StandinApp:
    """ASGI callable. Handlers are synchronous and fast (state under a lock); latency and
    hang faults are awaited in the event loop."""

    def __init__(self, state: StandinState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = {
            k: v[-1]
            for k, v in parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ).items()
        }
        req = Request(scope["method"], scope["path"], query, headers, body)
        response = await self.dispatch(req, receive)
        if response is None:
            return  # client went away during a hang
        await self._send(send, response)

    async def dispatch(self, req: Request, receive: Receive) -> Response | None:
        is_api = req.path.startswith(API_PREFIX)
        route_name = f"{req.method} {req.path}"
        handler: Handler | None = None
        path_matched = False
        for method, pattern, name, fn in ROUTES:
            m = pattern.match(req.path)
            if m is None:
                continue
            path_matched = True
            if method == req.method:
                handler = fn
                route_name = f"{method} {name}"
                req.params = m.groupdict()
                break
        response: Response | None = None
        if is_api:
            response, gone = await self._api_preamble(req, receive)
            if gone:
                self.state.count(route_name, 499)
                return None
        if response is None:
            if handler is None:
                response = (
                    _mx_error(405, "MethodNotAllowed", "Method not allowed")
                    if path_matched
                    else _mx_error(404, "NotFound", f"No route for {req.path}")
                )
            else:
                response = self._run(handler, req)
        if is_api:
            self.state.count(route_name, response.status)
        return response

    async def _api_preamble(self, req: Request, receive: Receive) -> tuple[Response | None, bool]:
        """Global latency and injected faults. Returns (a response to short-circuit with,
        whether the client went away)."""
        if self.state.latency_ms > 0:
            await asyncio.sleep(self.state.latency_ms / 1000)
        for fault in self.state.take_faults(req.method, req.path):
            if fault.kind == "latency":
                await asyncio.sleep(fault.latency_ms / 1000)
            elif fault.kind == "hang":
                if await _wait_for_disconnect(receive, HANG_MAX_SECONDS):
                    return None, True
                return _mx_error(504, "Timeout", "hung request released"), False
            elif fault.kind == "bad_body":
                bad = {"id": "not-a-number", "amount": "lots", "created": "?"}
                return Response(200, bad), False
            elif fault.kind == "not_found":
                return _mx_error(404, "NotFound", "Resource was not found"), False
            elif fault.kind == "bad_credentials":
                return _mx_error(
                    401, "InvalidCredentials", "The consumer key or secret is invalid"
                ), False
            else:
                resp = _mx_error(
                    fault.status,
                    "ServiceUnavailable" if fault.status >= 500 else "TooManyRequests",
                    f"injected fault: HTTP {fault.status}",
                )
                if fault.retry_after is not None:
                    resp.headers["Retry-After"] = fault.retry_after
                return resp, False
        return None, False

    def _run(self, handler: Handler, req: Request) -> Response:
        try:
            return handler(self.state, req)
        except StandinError as exc:
            return Response(exc.status, exc.body, dict(exc.headers))
        except (KeyError, TypeError, ValueError) as exc:
            return _mx_error(400, "ValidationError", "Validation failed", [repr(exc)])

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        if response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body, separators=(",", ":")).encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        if payload:
            headers.append((b"content-type", b"application/json; charset=utf-8"))
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _wait_for_disconnect(receive: Receive, limit: float) -> bool:
    """Wait until the client disconnects (True) or ``limit`` seconds pass (False)."""
    try:
        async with asyncio.timeout(limit):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return True
    except TimeoutError:
        return False


# ------------------------------------------------------------------------------------------
# running it
# ------------------------------------------------------------------------------------------


@dataclass
class StandinHandle:
    """A running stand-in. ``base_url`` ends in ``/checkout/v3``; ``state`` is the live
    in-process state (only when started in-process)."""

    base_url: str
    control_url: str
    host: str
    port: int
    state: StandinState
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> StandinHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_standin(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    state: StandinState | None = None,
    seed: int | None = None,
    latency_ms: float = 0.0,
    startup_timeout: float = 10.0,
    id_offset: int = 0,
) -> StandinHandle:
    """Start the stand-in in a background thread (its own event loop) and wait until it
    serves. Stop it with ``handle.stop()`` (or use it as a context manager)."""
    state = state or StandinState(seed=seed, id_offset=id_offset)
    if latency_ms:
        state.configure(latency_ms=latency_ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a keep-alive response written as headers
    # then body waits ~40 ms on the client's delayed ACK (Nagle), on every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        StandinApp(state),
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"mx-standin-{actual_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("MX stand-in failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("MX stand-in did not start in time")
        time.sleep(0.01)
    root = f"http://{host}:{actual_port}"
    return StandinHandle(
        base_url=root + API_PREFIX,
        control_url=root + CONTROL_PREFIX,
        host=host,
        port=actual_port,
        state=state,
        _server=server,
        _thread=thread,
    )
