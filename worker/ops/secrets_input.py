"""Reading MX API credentials and building callback URLs, without putting secrets on a
command line (shell history, ``ps``)."""

from __future__ import annotations

import getpass
import os
import secrets
import sys

from worker.ops.errors import CommandError

KEY_ENV = "MX_CONSUMER_KEY"
SECRET_ENV = "MX_CONSUMER_SECRET"  # noqa: S105  # a variable name
PUBLIC_URL_ENV = "WEBHOOK_PUBLIC_URL"


def read_credentials() -> tuple[str, str]:
    """The API key pair from ``MX_CONSUMER_KEY``/``MX_CONSUMER_SECRET``, else prompted for
    (the secret without echo). Never from arguments."""
    key = os.environ.get(KEY_ENV, "").strip()
    secret = os.environ.get(SECRET_ENV, "").strip()
    if key and secret:
        return key, secret
    if not sys.stdin.isatty():
        raise CommandError(f"set {KEY_ENV} and {SECRET_ENV} (no terminal to prompt on)")
    if not key:
        key = input("MX consumer key: ").strip()
    if not secret:
        secret = getpass.getpass("MX consumer secret: ").strip()
    if not key or not secret:
        raise CommandError("the consumer key and secret are both required")
    return key, secret


def new_token() -> str:
    """A callback-URL token: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def callback_url(token: str) -> str:
    base = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    if not base:
        raise CommandError(
            f"{PUBLIC_URL_ENV} is not set (the webhook's public base URL, https://...)"
        )
    return f"{base}/webhooks/mx/{token}"


def public_url_configured() -> None:
    """Fail before changing anything when the callback URL cannot be printed."""
    callback_url("check")


def mask_callback_url(url: str | None) -> str | None:
    """A callback URL with its token cut to four characters (lists must not leak tokens)."""
    if not url or "/webhooks/mx/" not in url:
        return url
    head, _, token = url.rpartition("/")
    return f"{head}/{token[:4]}…" if token else url
