"""The session: access and refresh tokens in HttpOnly, Secure, SameSite=Lax cookies.

``SessionMiddleware`` runs before every handler: it verifies the access token (refreshing it
when expired), puts the ``Identity`` (or None) in the scope, and writes new cookies on the
response when the tokens changed or must be cleared. A tampered token clears the session:
the visitor is signed out and lands on the sign-in page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.auth import (
    AuthProvider,
    AuthUnavailable,
    ExpiredToken,
    Identity,
    InvalidToken,
    RefreshCoalescer,
    TokenPair,
    TokenVerifier,
)

if TYPE_CHECKING:
    from dashboard.settings import DashboardSettings

log = logging.getLogger("dashboard.session")
ACCESS_COOKIE = "mxd_access"
REFRESH_COOKIE = "mxd_refresh"
SCOPE_KEY = "mxd_session"


@dataclass
class SessionState:
    """Per request: who is signed in, and what the response must do to the cookies."""

    identity: Identity | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    new_tokens: TokenPair | None = None
    clear: bool = False
    auth_unavailable: bool = False
    extra_cookies: list[str] = field(default_factory=list)

    def signed_in(self, pair: TokenPair, identity: Identity) -> None:
        self.identity = identity
        self.access_token = pair.access_token
        self.refresh_token = pair.refresh_token
        self.new_tokens = pair
        self.clear = False

    def signed_out(self) -> None:
        self.identity = None
        self.new_tokens = None
        self.clear = True


def session_of(scope: Scope) -> SessionState:
    state = scope.get(SCOPE_KEY)
    if not isinstance(state, SessionState):
        state = SessionState()
        scope[SCOPE_KEY] = state  # type: ignore[literal-required]
    return state


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                return {}
    return {key: morsel.value for key, morsel in jar.items()}


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> str:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


class SessionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: DashboardSettings,
        verifier: TokenVerifier,
        provider: AuthProvider,
        coalescer: RefreshCoalescer,
    ) -> None:
        self.app = app
        self.settings = settings
        self.verifier = verifier
        self.provider = provider
        self.coalescer = coalescer
        self.max_age = settings.dashboard_refresh_token_days * 86400

    async def _resolve(self, scope: Scope, state: SessionState) -> None:
        cookies = _cookies(scope)
        access = cookies.get(ACCESS_COOKIE)
        refresh = cookies.get(REFRESH_COOKIE)
        state.access_token, state.refresh_token = access, refresh
        if access:
            try:
                state.identity = await self.verifier.verify(access)
                return
            except ExpiredToken:
                pass
            except InvalidToken:
                log.info("tampered or foreign access token: session cleared")
                state.signed_out()
                return
            except AuthUnavailable:
                state.auth_unavailable = True
                return
        if not refresh:
            if access:
                state.signed_out()
            return
        try:
            pair = await self.coalescer.refresh(self.provider, refresh)
        except AuthUnavailable:
            state.auth_unavailable = True
            return
        if pair is None:
            state.signed_out()
            return
        try:
            state.signed_in(pair, await self.verifier.verify(pair.access_token))
        except InvalidToken:
            state.signed_out()
        except AuthUnavailable:
            state.auth_unavailable = True

    def _set_cookie_headers(self, state: SessionState) -> list[tuple[bytes, bytes]]:
        secure = self.settings.dashboard_cookie_secure
        headers: list[str] = list(state.extra_cookies)
        if state.new_tokens is not None:
            headers.append(
                cookie_header(ACCESS_COOKIE, state.new_tokens.access_token, self.max_age, secure)
            )
            headers.append(
                cookie_header(REFRESH_COOKIE, state.new_tokens.refresh_token, self.max_age, secure)
            )
        elif state.clear:
            headers.append(cookie_header(ACCESS_COOKIE, "", 0, secure))
            headers.append(cookie_header(REFRESH_COOKIE, "", 0, secure))
        return [(b"set-cookie", h.encode("latin-1")) for h in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        state = session_of(scope)
        path = scope.get("path", "")
        if not path.startswith(("/static/", "/healthz", "/readyz")):
            await self._resolve(scope, state)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = self._set_cookie_headers(state)
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def new_session(scope: Scope, pair: TokenPair, identity: Identity) -> None:
    session_of(scope).signed_in(pair, identity)


def end_session(scope: Scope) -> None:
    session_of(scope).signed_out()


def remember(scope: Scope, header: str) -> None:
    session_of(scope).extra_cookies.append(header)


def identity_of(scope: Scope) -> Identity | None:
    return session_of(scope).identity


def tokens_of(scope: Scope) -> tuple[str | None, str | None]:
    state = session_of(scope)
    return state.access_token, state.refresh_token


__all__ = [
    "ACCESS_COOKIE",
    "REFRESH_COOKIE",
    "SessionMiddleware",
    "SessionState",
    "end_session",
    "identity_of",
    "new_session",
    "session_of",
    "tokens_of",
]
