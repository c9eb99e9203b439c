"""The one error type of the operator commands and their helpers."""

from __future__ import annotations


class CommandError(Exception):
    """A failure to report to the operator as one clear line (exit code 2)."""
