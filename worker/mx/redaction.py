"""Card secrets removed from MX JSON before anything is stored or logged.

Keys that name a card number or card secret are dropped; every other value that could still
hold a card number (a string or a large integer with 13 or more digits, whatever separates
them: a payer's note, a customer name) is masked to its last four digits
(``common.masking``, the same rule as the webhook's and the logs').
"""

from __future__ import annotations

import copy
from typing import Any

from common.masking import mask_scalar

# --------------------------------------------------------------------------------------------
# redaction
# --------------------------------------------------------------------------------------------

# Keys (lower-cased, without "_" / "-") that may hold a full card number or card secret.
_SECRET_KEYS = frozenset(
    {
        "number",
        "cardnumber",
        "cardno",
        "cardnum",
        "accountnumber",
        "pan",
        "fullpan",
        "primaryaccountnumber",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cid",
        "securitycode",
        "track",
        "track1",
        "track2",
        "trackdata",
        "magstripe",
        "encryptedtrack",
        "pinblock",
    }
)
_CARD_CONTAINERS = frozenset({"cardaccount", "bankaccount", "card", "paymentmethod"})


def _norm_key(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def redact_card_secrets(value: Any, *, _in_card: bool = False) -> Any:
    """Return a deep copy of an MX JSON value without card secrets.

    Drops ``token`` inside ``cardAccount``/``bankAccount`` objects and every key named like a
    full card number or card security value (``number``, ``cardNumber``, ``accountNumber``,
    ``pan``, ``cvv``, ``track2`` ...), at any depth. ``last4``/``pan4`` are kept. Strings and
    integers that hold a possible card number are masked.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            norm = _norm_key(str(key))
            if norm in _SECRET_KEYS:
                continue
            if _in_card and norm == "token":
                continue
            out[key] = redact_card_secrets(item, _in_card=norm in _CARD_CONTAINERS)
        return out
    if isinstance(value, list):
        return [redact_card_secrets(v) for v in value]
    return copy.copy(mask_scalar(value))
