"""In-process token buckets: the per-address limit of one webhook process.

The per-token limit is not here: it is enforced in Postgres by ``private.ingest_webhook``
(``private.take_webhook_token``), where every webhook process and host meet, so N processes do
not multiply it. The per-address limit stays in each process (a cheap first line against one
noisy client; with N processes it allows up to N times the rate).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; a request
takes one. Buckets live in insertion order of their last use, so the least recently used
comes first: a bucket that has refilled completely is indistinguishable from a missing one
and is evicted, and the oldest are evicted beyond ``max_keys``. Memory stays bounded.
Single event loop, no locks needed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable


class TokenBuckets:
    """Token buckets keyed by string; ``rate`` <= 0 disables the limiter."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens left, time of last update); ordered by last use
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        self._evict(now)
        return wait

    def _evict(self, now: float) -> None:
        while self._buckets:
            key = next(iter(self._buckets))
            tokens, updated = self._buckets[key]
            full = tokens + (now - updated) * self.rate >= self.burst
            if full or len(self._buckets) > self.max_keys:
                del self._buckets[key]
            else:
                break


def token_key(token: str) -> str:
    """Log-safe fingerprint of a callback token: a sha256 prefix, never the token."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()[:16]
