"""Practices onboarded as MX merchants in a test database: through the same
``scripts.localdb.create_merchant`` the demo and the benchmarks use (the helpers live in
``scripts.dev_pipeline``, which development tools use too)."""

from __future__ import annotations

from scripts.dev_pipeline import Merchant, create_merchant, onboard

__all__ = ["Merchant", "create_merchant", "onboard"]
