"""A local stand-in for the MX Merchant API (checkout v3), failures included.

Start it in-process::

    from mxstandin import start_standin
    handle = start_standin()          # port 0 = any free port on 127.0.0.1
    handle.base_url                   # "http://127.0.0.1:PORT/checkout/v3"
    handle.control_url                # "http://127.0.0.1:PORT/_standin"
    handle.state                      # the live StandinState (thread-safe)
    handle.stop()

or as a process: ``python -m mxstandin --host 127.0.0.1 --port 0`` (prints one JSON line
with ``base_url`` and ``control_url``; SIGTERM/SIGINT stop it with exit code 0).

API (HTTP Basic auth): ``GET /payment/{id}``, ``GET /payment?merchantId=&limit=&offset=
[&startDate=&endDate=]``, ``GET /invoice/{id}``, ``GET /contract?merchantId=&status=&limit=
&offset=``, ``GET /contract/{id}``, ``GET /contract/payment?id=&limit=&offset=``,
``GET /merchant/{id}``, ``PUT /subscription``, ``GET /subscription``,
``DELETE /subscription/{id}``.

Control API (JSON, no auth), under ``/_standin``:

* ``POST /merchants`` ``{"name", "merchant_id"?, "consumer_key"?, "consumer_secret"?,
  "timezone_offset": "-8:00", "daylight_saving": true}``
* ``POST /customers`` ``{"merchant_id", "name"?, "number"?}``
* ``POST /sales`` ``{"merchant_id", "customer_id"?, "lines"?: [{"product_name", "price"?,
  "quantity"?}], "source"?: "QuickPay", "declined"?: false, "contract"?: {"interval":
  "Monthly", "every": "1 Month"}, "contract_id"?, "created"?, "tax"?}`` ->
  ``{"payment", "invoice", "contract", "webhook"}``
* ``POST /refunds`` ``{"payment_id", "amount"?}`` -> ``{"payment", "webhook"}``
* ``POST /payments/{id}/status`` ``{"status": "Settled"}``
* ``POST /contracts/{id}/status`` ``{"status": "Cancelled"}``
* ``GET /payments/{id}/webhook[?event_type=]`` -> the MX notification for that payment
* ``POST /faults`` ``{"path_prefix": "/checkout/v3/payment", "kind": "status"|"latency"|
  "hang"|"not_found"|"bad_credentials"|"bad_body", "status": 503, "retry_after": 2,
  "latency_ms": 100, "probability": 0.3, "count": 5, "method"?: "GET"}``;
  ``DELETE /faults`` clears them
* ``POST /config`` ``{"latency_ms": 100, "seed": 42}``
* ``GET /counters[?reset=1]``; ``POST /reset`` ``{"seed"?}``; ``GET /health``
* ``GET /merchants/{id}/subscriptions``
* ``POST /sink/{name}[?status=200]`` records any JSON body (a stand-in webhook receiver for
  generator tests); ``GET /sink/{name}`` returns what arrived
"""

from mxstandin.server import StandinApp, StandinHandle, start_standin
from mxstandin.state import (
    PRODUCTS,
    StandinError,
    StandinState,
    build_non_payment_payload,
    build_webhook_payload,
)

__all__ = [
    "PRODUCTS",
    "StandinApp",
    "StandinError",
    "StandinHandle",
    "StandinState",
    "build_non_payment_payload",
    "build_webhook_payload",
    "start_standin",
]
