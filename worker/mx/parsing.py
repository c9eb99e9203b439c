"""Parsers for the scalar quirks of MX Merchant JSON, and the annotated field types built on them.

Documented in ``/work/shared/mx-merchant-api.md``:

* money arrives as decimal strings with trailing zeros trimmed (``"260"``, ``"181.12"``),
  sometimes as JSON numbers; it is parsed to :class:`~decimal.Decimal`, never ``float``;
* times arrive as ISO-8601 with ``Z`` and 0-3 fractional digits, sometimes without ``Z``
  (then UTC), or in the MX text format ``"Aug 11 2025 10:02AM"`` (two spaces before a
  one-digit hour);
* ids are 64-bit integers that may arrive as strings; an id of ``0`` or ``""`` (as MX writes
  a reference to nothing, e.g. ``originalId: 0``), ``null`` or a missing field all mean
  "none" (:func:`parse_reference_id`);
* ``""`` and ``null`` both mean "absent".
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

# --------------------------------------------------------------------------------------------
# scalar parsers
# --------------------------------------------------------------------------------------------

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# "Aug 11 2025 10:02AM", "Aug 11 2025  6:02AM", tolerate seconds and a space before AM/PM.
_MX_TEXT_RE = re.compile(
    r"^\s*([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])\s*$"
)
_ISO_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
# "/Date(1754906520000)/" (old .NET JSON); rare but cheap to accept.
_DOTNET_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_money(value: Any) -> Decimal | None:
    """Parse an MX money value (``"181.12"``, ``"260"``, ``"-10.5"``, ``12.5``) to ``Decimal``.

    ``""`` and ``None`` give ``None``. Floats are converted through their shortest repr, so
    ``12.1`` becomes ``Decimal("12.1")``, never ``12.0999...``. Raises ``ValueError`` for
    anything that is not a finite number.
    """
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("money must be a number or a decimal string, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if text.startswith("$"):
            text = text[1:]
        elif text.startswith("-$"):
            text = "-" + text[2:]
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
    else:
        raise ValueError(f"not a decimal amount: {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"amount is not finite: {value!r}")
    return result


def money_str(value: Decimal | None) -> str | None:
    """Format a Decimal as a plain decimal string (no exponent), ``None`` stays ``None``."""
    if value is None:
        return None
    return format(value, "f")


def _parse_mx_text(text: str) -> datetime | None:
    m = _MX_TEXT_RE.match(text)
    if m is None:
        return None
    mon, day, year, hour, minute, second, ampm = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        raise ValueError(f"unknown month in MX date: {text!r}")
    h = int(hour)
    if not 1 <= h <= 12:
        raise ValueError(f"hour out of range in MX date: {text!r}")
    h = h % 12 + (12 if ampm.lower() == "pm" else 0)
    return datetime(int(year), month, int(day), h, int(minute), int(second or 0))


def _parse_naive_or_aware(value: Any) -> datetime | None:
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date-time")
    if isinstance(value, int | float):
        # epoch seconds or milliseconds
        seconds = value / 1000 if abs(value) > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {type(value).__name__}")
    text = value.strip()
    mx = _parse_mx_text(text)
    if mx is not None:
        return mx
    m = _DOTNET_RE.match(text)
    if m is not None:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
    iso = text
    if iso.endswith(("z", "Z")):
        iso = iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a recognised MX date-time: {value!r}") from exc


def parse_mx_datetime(value: Any) -> datetime | None:
    """Parse an MX timestamp to an aware UTC ``datetime``.

    Accepts ISO-8601 with or without ``Z``/offset (no offset means UTC) and any number of
    fractional digits, the MX text format ``"Aug 11 2025 10:02AM"`` (taken as UTC), epoch
    numbers, ``datetime`` objects. ``""``/``None`` give ``None``.
    """
    parsed = _parse_naive_or_aware(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_mx_local_datetime(value: Any) -> datetime | None:
    """Parse a merchant-local MX time (webhook ``localDate``) to a *naive* ``datetime``.

    The value carries no offset; combine it with the merchant's ``timezoneOffset`` if the
    absolute instant is needed. An aware input keeps its wall-clock time, offset dropped.
    """
    parsed = _parse_naive_or_aware(value)
    if parsed is None:
        return None
    return parsed.replace(tzinfo=None)


def parse_mx_date(value: Any) -> date | None:
    """Parse an MX date: ``"2025-08-11"``, an ISO date-time (its date part as written),
    ``"Aug 11 2025 10:02AM"``, a ``date``/``datetime``. ``""``/``None`` give ``None``."""
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = _ISO_DATE_RE.match(value)
        if m is not None:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        mx = _parse_mx_text(value.strip())
        if mx is not None:
            return mx.date()
        # "Aug 11 2025" without a time
        m2 = re.match(r"^\s*([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\s*$", value)
        if m2 is not None and m2.group(1).lower() in _MONTHS:
            return date(int(m2.group(3)), _MONTHS[m2.group(1).lower()], int(m2.group(2)))
        # "08/11/2025"
        m3 = re.match(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$", value)
        if m3 is not None:
            return date(int(m3.group(3)), int(m3.group(1)), int(m3.group(2)))
    parsed = _parse_naive_or_aware(value)
    return None if parsed is None else parsed.date()


def format_mx_text_datetime(value: datetime) -> str:
    """Format like the MX webhook (SQL Server style 100): ``"Aug 11 2025 10:02AM"``,
    ``"Aug 11 2025  6:02AM"`` (hour and day space-padded to two characters)."""
    hour12 = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    month = _MONTH_NAMES[value.month - 1]
    return f"{month} {value.day:>2} {value.year} {hour12:>2}:{value.minute:02d}{ampm}"


def parse_id(value: Any) -> int | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("an id must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"an id must be an integer: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise ValueError(f"an id must be an integer: {value!r}")
    raise ValueError(f"an id must be an integer: {type(value).__name__}")


def parse_reference_id(value: Any) -> int | None:
    """Parse an MX id field: ``0``, ``"0"``, ``""``, ``null`` (and a missing field, through the
    model's default) mean "none" and give ``None``; anything else as :func:`parse_id`."""
    parsed = parse_id(value)
    return None if parsed == 0 else parsed


def parse_required_id(value: Any) -> int:
    """Parse the id of the record itself: it must name something, so none is an error."""
    parsed = parse_reference_id(value)
    if parsed is None:
        raise ValueError(f'an id is required, got {value!r} (0, "" and null mean none)')
    return parsed


def parse_opt_str(value: Any) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string: {type(value).__name__}")


def _parse_opt_bool(value: Any) -> bool | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "y"):
            return True
        if low in ("false", "0", "no", "n"):
            return False
    raise ValueError(f"expected a boolean: {value!r}")


def _parse_id_list(value: Any) -> list[int]:
    if _is_blank(value):
        return []
    if isinstance(value, str):
        items: list[Any] = [p for p in re.split(r"[,\s]+", value) if p]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    out: list[int] = []
    for item in items:
        parsed = parse_reference_id(item)
        if parsed is not None:
            out.append(parsed)
    return out


def _parse_str_list(value: Any) -> list[str]:
    if _is_blank(value):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if not _is_blank(v)]
    return [str(value)]


def blank_to_none(value: Any) -> Any:
    return None if _is_blank(value) else value


def blank_to_list(value: Any) -> Any:
    return [] if _is_blank(value) else value


Money = Annotated[Decimal | None, BeforeValidator(parse_money)]
UtcDateTime = Annotated[datetime | None, BeforeValidator(parse_mx_datetime)]
LocalDateTime = Annotated[datetime | None, BeforeValidator(parse_mx_local_datetime)]
MxDate = Annotated[date | None, BeforeValidator(parse_mx_date)]
MxId = Annotated[int | None, BeforeValidator(parse_reference_id)]
RequiredId = Annotated[int, BeforeValidator(parse_required_id)]
OptStr = Annotated[str | None, BeforeValidator(parse_opt_str)]
OptInt = Annotated[int | None, BeforeValidator(parse_id)]
OptBool = Annotated[bool | None, BeforeValidator(_parse_opt_bool)]
IdList = Annotated[list[int], BeforeValidator(_parse_id_list)]
StrList = Annotated[list[str], BeforeValidator(_parse_str_list)]
