"""Card-number masking for every client-supplied value the project stores or logs.

A possible card number is a run of 13 or more digits, whatever separates them: spaces
(including no-break and thin spaces), hyphens and every dash (en dash, em dash, minus),
dots, underscores and slashes, up to three separator characters between two digits. Each
such run is replaced by asterisks and its last four digits (``4111 1111 1111 1111`` ->
``************1111``). The webhook masks payloads and raw bodies with it, the worker its MX
JSON before storing it, and ``common.logs`` every log line.
"""

from __future__ import annotations

import re
from typing import Any, Final

# Unicode separators a payer or a form may put between card digits (\s covers every Unicode
# space, among them U+00A0 and U+202F).
_SEPARATOR: Final = r"[\s._/\-\u2010-\u2015\u2212\u00ad\ufe58\ufe63\uff0d]"
_CARD_LIKE: Final = re.compile(rf"\d(?:{_SEPARATOR}{{0,3}}\d){{12,}}")
_NON_DIGIT: Final = re.compile(r"\D")


def _mask(match: re.Match[str]) -> str:
    digits = _NON_DIGIT.sub("", match.group(0))
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_card_numbers(text: str) -> str:
    """``text`` with every possible card number masked to its last four digits."""
    return _CARD_LIKE.sub(_mask, text)


def mask_number(value: int) -> int | str:
    """An integer as it may be stored or logged: one of 13 or more digits becomes its masked
    text, a smaller one stays as it is."""
    return mask_card_numbers(str(value)) if abs(value) >= 10**12 else value


def mask_scalar(value: Any) -> Any:
    """A JSON scalar as it may be stored or logged: strings and large integers masked;
    booleans, None and floats as they are. Anything else is returned unchanged."""
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return mask_number(value)
    return value
