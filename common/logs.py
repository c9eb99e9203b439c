"""Structured logs: one JSON object a line on stderr.

The one log format of the webhook and the worker. Fields go in ``extra={"fields": {...}}``.
Callers never pass a request body, an API secret, a webhook token (a short hash prefix at
most) or card data beyond the last four digits (``webhook.payload`` masks payloads first). As
a last line, the formatter masks every possible card number (``common.masking``: 13 or more
digits, whatever separates them) in the message, the fields (keys, strings, large integers,
nested lists and objects) and the exception text of every line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from common.masking import mask_card_numbers, mask_scalar

_HANDLER_MARK = "_mx_json_logs"
_MAX_MASK_DEPTH = 8


def _masked(value: Any, depth: int = 0) -> Any:
    """A log field with every possible card number masked."""
    if isinstance(value, str | int | float) or value is None:
        return mask_scalar(value)
    if depth >= _MAX_MASK_DEPTH:
        return mask_card_numbers(str(value))
    if isinstance(value, dict):
        return {mask_card_numbers(str(k)): _masked(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v, depth + 1) for v in value]
    return mask_card_numbers(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "msg", ...fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_card_numbers(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(_masked(fields))
        if record.exc_info:
            entry["exc"] = mask_card_numbers(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record (ours, uvicorn's, psycopg's) as JSON lines to stderr.

    Idempotent: replaces the handler a previous call installed.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers would otherwise format (and the access log would print the
    # token in the path): route them to the root handler, access log off.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request URL at INFO: noise at the worker's volume.
    logging.getLogger("httpx").setLevel(logging.WARNING)
