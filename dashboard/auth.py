"""Identity: verify access tokens (one path for Supabase Auth and the local issuer), sign in,
refresh, sign out, and limit failed sign-ins.

Production: Supabase Auth (GoTrue) signs in, refreshes and signs out over HTTP; its access
tokens are verified here with the project's JWT secret (HS256) or its published keys (JWKS:
RS256/ES256). Locally: the platform layer's ``auth.local_*`` functions check bcrypt
passwords and rotate refresh tokens, and ``LocalAuth`` signs HS256 access tokens with the
local secret. ``TokenVerifier.verify`` is the same code for both.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
import jwt
import psycopg
from psycopg_pool import AsyncConnectionPool

ROLE = "authenticated"
ASYMMETRIC = ("RS256", "ES256", "EdDSA")


class InvalidToken(Exception):
    """A token that is not ours: bad signature, wrong audience, malformed."""


class ExpiredToken(InvalidToken):
    """A valid token past its expiry: refresh."""


class AuthUnavailable(Exception):
    """The identity provider (or the database playing it) cannot be reached."""


@dataclass(frozen=True)
class Identity:
    """The verified claims of the signed-in user."""

    user_id: str
    email: str
    expires_at: int
    claims: dict[str, Any]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


class TokenVerifier:
    """Verifies access tokens: signature (HS256 secret or JWKS), expiry, audience, role."""

    def __init__(self, secret: str, jwks_url: str, audience: str, issuer: str) -> None:
        self._secret = secret
        self._audience = audience
        self._issuer = issuer or None
        self._jwks = jwt.PyJWKClient(jwks_url, lifespan=600) if jwks_url else None

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("malformed token") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key = self._secret
        elif algorithm in ASYMMETRIC and self._jwks is not None:
            jwks = self._jwks
            try:
                signing = await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError as exc:
                raise AuthUnavailable("the signing keys cannot be fetched") from exc
            except jwt.PyJWKClientError as exc:
                raise InvalidToken("unknown signing key") from exc
            key = signing.key
        else:
            raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims.get("role") != ROLE:
            raise InvalidToken("not a signed-in user's token")
        try:
            uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise InvalidToken("subject is not a user id") from exc
        return Identity(
            user_id=str(claims["sub"]),
            email=str(claims.get("email") or ""),
            expires_at=int(claims["exp"]),
            claims=claims,
        )


class AuthProvider(Protocol):
    """What the dashboard asks of the identity provider."""

    async def sign_in(self, email: str, password: str) -> TokenPair | None: ...

    async def refresh(self, refresh_token: str) -> TokenPair | None: ...

    async def sign_out(self, access_token: str, refresh_token: str) -> None: ...

    async def send_magic_link(self, email: str, redirect_to: str) -> str | None: ...

    async def verify_link(self, token: str, password: str | None) -> TokenPair | None: ...

    async def set_password(self, access_token: str, password: str) -> None: ...


class LocalAuth:
    """The local platform layer plays Supabase Auth; access tokens signed with the secret."""

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        secret: str,
        access_seconds: int,
        refresh_seconds: int,
        issuer: str,
        audience: str,
    ) -> None:
        self._pool = pool
        self._secret = secret
        self._access_seconds = access_seconds
        self._refresh_seconds = refresh_seconds
        self._issuer = issuer or "local-auth"
        self._audience = audience

    def _sign(self, user_id: Any, email: str, session_id: Any) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "email": email,
            "role": ROLE,
            "aud": self._audience,
            "iss": self._issuer,
            "iat": now,
            "exp": now + self._access_seconds,
            "session_id": str(session_id),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    async def _pair(self, sql: Any, params: tuple[Any, ...]) -> TokenPair | None:
        try:
            async with self._pool.connection() as conn:
                row = await (await conn.execute(sql, params)).fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise AuthUnavailable("the database is unavailable") from exc
        if row is None:
            return None
        return TokenPair(
            self._sign(row["user_id"], row["email"] or "", row["session_id"]),
            str(row["refresh_token"]),
        )

    async def sign_in(self, email: str, password: str) -> TokenPair | None:
        return await self._pair(
            "select * from auth.local_sign_in(%s, %s, %s)",
            (email, password, self._refresh_seconds),
        )

    async def refresh(self, refresh_token: str) -> TokenPair | None:
        return await self._pair(
            "select * from auth.local_refresh(%s, %s)", (refresh_token, self._refresh_seconds)
        )

    async def sign_out(self, access_token: str, refresh_token: str) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute("select auth.local_sign_out(%s)", (refresh_token,))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise AuthUnavailable("the database is unavailable") from exc

    async def send_magic_link(self, email: str, redirect_to: str) -> str | None:
        """Locally no mail leaves the machine: the link is returned (the app logs it)."""
        try:
            async with self._pool.connection() as conn:
                row = await (
                    await conn.execute(
                        "select auth.local_magic_link(%s, %s)", (email, self._access_seconds)
                    )
                ).fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise AuthUnavailable("the database is unavailable") from exc
        token = next(iter(row.values())) if row else None
        return f"{redirect_to}?token={token}&type=magiclink" if token else None

    async def verify_link(self, token: str, password: str | None) -> TokenPair | None:
        return await self._pair(
            "select * from auth.local_verify_one_time_token(%s, %s, %s)",
            (token, password, self._refresh_seconds),
        )

    async def set_password(self, access_token: str, password: str) -> None:
        raise NotImplementedError("locally, an invitation link sets the password")


class SupabaseAuth:
    """Supabase Auth (GoTrue) over HTTP with the project's anon key."""

    def __init__(self, url: str, anon_key: str) -> None:
        self._base = url.rstrip("/") + "/auth/v1"
        self._client = httpx.AsyncClient(
            timeout=10, headers={"apikey": anon_key, "content-type": "application/json"}
        )

    async def _post(self, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.post(self._base + path, json=body, **kwargs)
        except httpx.HTTPError as exc:
            raise AuthUnavailable("Supabase Auth is unavailable") from exc

    @staticmethod
    def _tokens(response: httpx.Response) -> TokenPair | None:
        if response.status_code >= 500:
            raise AuthUnavailable(f"Supabase Auth answered {response.status_code}")
        if response.status_code != 200:
            return None
        body = response.json()
        return TokenPair(str(body["access_token"]), str(body["refresh_token"]))

    async def sign_in(self, email: str, password: str) -> TokenPair | None:
        response = await self._post(
            "/token", {"email": email, "password": password}, params={"grant_type": "password"}
        )
        return self._tokens(response)

    async def refresh(self, refresh_token: str) -> TokenPair | None:
        response = await self._post(
            "/token", {"refresh_token": refresh_token}, params={"grant_type": "refresh_token"}
        )
        return self._tokens(response)

    async def sign_out(self, access_token: str, refresh_token: str) -> None:
        await self._post("/logout", {}, headers={"authorization": f"Bearer {access_token}"})

    async def send_magic_link(self, email: str, redirect_to: str) -> str | None:
        await self._post(
            "/otp", {"email": email, "create_user": False}, params={"redirect_to": redirect_to}
        )
        return None

    async def verify_link(self, token: str, password: str | None) -> TokenPair | None:
        # Supabase's link lands on /auth/confirm with the tokens in the URL fragment; the page
        # posts them to /auth/session, which verifies them like any other token.
        return None

    async def set_password(self, access_token: str, password: str) -> None:
        try:
            response = await self._client.put(
                self._base + "/user",
                json={"password": password},
                headers={"authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            raise AuthUnavailable("Supabase Auth is unavailable") from exc
        if response.status_code != 200:
            raise ValueError(response.json().get("msg") or "the password was refused")


class RefreshCoalescer:
    """A browser's parallel requests with the same expired session refresh once: the new pair
    is shared for a few seconds (a rotated refresh token is good for one exchange)."""

    def __init__(self, keep_seconds: float = 10.0, max_entries: int = 10000) -> None:
        self._keep = keep_seconds
        self._max = max_entries
        self._done: OrderedDict[str, tuple[float, TokenPair | None]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def refresh(self, provider: AuthProvider, refresh_token: str) -> TokenPair | None:
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                now = time.monotonic()
                hit = self._done.get(key)
                if hit is not None and now - hit[0] < self._keep:
                    return hit[1]
                pair = await provider.refresh(refresh_token)
                self._done[key] = (now, pair)
                while len(self._done) > self._max or (
                    self._done and now - next(iter(self._done.values()))[0] > self._keep
                ):
                    self._done.popitem(last=False)
                return pair
        finally:
            if not lock.locked():
                self._locks.pop(key, None)


class FailureLimiter:
    """Failed sign-ins per key (an address, an e-mail) in a sliding window."""

    def __init__(self, limit: int, window_seconds: float, max_keys: int = 10000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic()
        times = self._recent(key, now)
        if len(times) < self.limit:
            return 0.0
        return max(1.0, self.window - (now - times[0]))

    def failed(self, key: str) -> None:
        now = time.monotonic()
        times = self._failures.setdefault(key, deque())
        self._failures.move_to_end(key)
        times.append(now)
        while len(times) > self.limit:
            times.popleft()
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
