"""Routes: sign-in, sign-in links, the session, passwords, sign-out."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Any

import psycopg
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body
from litestar.response import Redirect, Template

from dashboard.auth import AuthUnavailable, Identity, InvalidToken, TokenPair
from dashboard.pages import client_address, db_message, page, safe_next
from dashboard.runtime import Runtime
from dashboard.session import (
    end_session,
    new_session,
    tokens_of,
)

log = logging.getLogger("dashboard")


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: sign-in, sign-in links, the session, passwords, sign-out."""
    settings = rt.settings

    @get("/auth/sign-in")
    async def sign_in_page(request: Request[Any, Any, Any], next: str = "/") -> Template:
        return page("sign_in.html", next=safe_next(next), supabase=settings.uses_supabase_auth)

    @post("/auth/sign-in")
    async def sign_in(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        email = (data.get("email") or "").strip().lower()
        password = data.get("password") or ""
        target = safe_next(data.get("next"))
        address = client_address(request)
        wait = max(rt.limit_email.retry_after(email), rt.limit_address.retry_after(address))
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return page(
                "sign_in.html",
                429,
                next=target,
                email=email,
                supabase=settings.uses_supabase_auth,
                error=f"Too many failed sign-ins. Try again in about {minutes} minute(s), "
                "or use a sign-in link.",
            )
        pair = None
        if email and password and len(email) <= 320 and len(password) <= 1000:
            pair = await rt.provider.sign_in(email, password)
        if pair is None:
            rt.limit_email.failed(email)
            rt.limit_address.failed(address)
            log.info("sign-in failed", extra={"fields": {"client": address}})
            return page(
                "sign_in.html",
                401,
                next=target,
                email=email,
                supabase=settings.uses_supabase_auth,
                error="The e-mail or the password is wrong.",
            )
        try:
            identity = await rt.verifier.verify(pair.access_token)
        except InvalidToken as exc:
            raise AuthUnavailable("the issued token does not verify") from exc
        rt.limit_email.succeeded(email)
        new_session(request.scope, pair, identity)
        return Redirect(target, status_code=303)

    @post("/auth/magic-link")
    async def magic_link(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        email = (data.get("email") or "").strip().lower()
        address = client_address(request)
        if rt.limit_address.retry_after(address) > 0 or rt.limit_email.retry_after(email) > 0:
            return page(
                "sign_in.html",
                429,
                next="/",
                email=email,
                supabase=settings.uses_supabase_auth,
                error="Too many attempts. Try again later.",
            )
        rt.limit_email.failed(email)  # every link request counts against the limits
        rt.limit_address.failed(address)
        if email:
            base = settings.dashboard_public_url.rstrip("/") or str(request.base_url).rstrip("/")
            link = await rt.provider.send_magic_link(email, f"{base}/auth/confirm")
            if link:  # local platform layer: no mail server, the operator reads the log
                log.warning(
                    "local sign-in link (no e-mail is sent locally)",
                    extra={"fields": {"email": email, "link": link}},
                )
        return page("link_sent.html", email=email, supabase=settings.uses_supabase_auth)

    @get("/auth/confirm")
    async def confirm_page(token: str = "", type: str = "") -> Template:
        return page("confirm.html", token=token, kind=type)

    @post("/auth/confirm")
    async def confirm(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        token = data.get("token") or ""
        kind = data.get("type") or ""
        password = data.get("password")
        if kind == "invite":
            if (password or "") != (data.get("password_again") or ""):
                return page(
                    "confirm.html", 422, token=token, kind=kind, error="The two passwords differ."
                )
            if len(password or "") < 8:
                return page(
                    "confirm.html",
                    422,
                    token=token,
                    kind=kind,
                    error="The password must have at least 8 characters.",
                )
        try:
            pair = await rt.provider.verify_link(token, password if kind == "invite" else None)
        except psycopg.errors.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            return page("confirm.html", 422, token=token, kind=kind, error=db_message(exc))
        if pair is None:
            return page(
                "confirm.html",
                400,
                token="",
                kind=kind,
                error="This link is not valid any more (used or expired). "
                "Ask for a new one on the sign-in page.",
            )
        new_session(request.scope, pair, await rt.verifier.verify(pair.access_token))
        return Redirect("/", status_code=303)

    @post("/auth/session")
    async def session_from_link(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Supabase's links land with the tokens in the URL fragment; the page posts them."""
        pair = TokenPair(data.get("access_token") or "", data.get("refresh_token") or "")
        try:
            identity = await rt.verifier.verify(pair.access_token)
        except InvalidToken:
            return page(
                "confirm.html",
                400,
                token="",
                kind="",
                error="This link is not valid any more. Ask for a new one.",
            )
        new_session(request.scope, pair, identity)
        kind = data.get("type") or ""
        return Redirect(
            "/auth/set-password" if kind in ("invite", "recovery") else "/", status_code=303
        )

    @get("/auth/set-password")
    async def set_password_page(identity: Identity) -> Template:
        return page("set_password.html", identity=identity)

    @post("/auth/set-password")
    async def set_password(
        request: Request[Any, Any, Any],
        identity: Identity,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        password = data.get("password") or ""
        if password != (data.get("password_again") or "") or len(password) < 8:
            return page(
                "set_password.html",
                422,
                identity=identity,
                error="Give the same password twice, at least 8 characters.",
            )
        access, _ = tokens_of(request.scope)
        try:
            await rt.provider.set_password(access or "", password)
        except (ValueError, NotImplementedError) as exc:
            return page("set_password.html", 422, identity=identity, error=str(exc))
        return Redirect("/", status_code=303)

    @post("/auth/sign-out")
    async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
        access, refresh = tokens_of(request.scope)
        if refresh:
            with contextlib.suppress(AuthUnavailable):
                await rt.provider.sign_out(access or "", refresh)
        end_session(request.scope)
        response: Response[Any] = Redirect("/auth/sign-in", status_code=303)
        if request.headers.get("hx-request"):
            response = Response(b"", status_code=204, headers={"HX-Redirect": "/auth/sign-in"})
        return response

    return [
        sign_in_page,
        sign_in,
        magic_link,
        confirm_page,
        confirm,
        session_from_link,
        set_password_page,
        set_password,
        sign_out,
    ]
