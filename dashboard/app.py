"""The dashboard app: ``create_app(settings)``, the factory that wires the routes together.

Pages rendered on the server (Jinja2), htmx for fragments, server-sent events for live
updates. Every handler that shows or changes practice data runs in ``Runtime.user()``: one
transaction as the signed-in user through the ``api`` schema, so RLS decides what exists; an
id the user cannot see is a 404, whatever practice it belongs to. The routes live in
``routes_*.py`` (one module per area), the error pages in ``errors.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from dashboard import (
    routes_auth,
    routes_catalogue,
    routes_events,
    routes_live,
    routes_memberships,
    routes_metrics,
    routes_operator,
    routes_ops,
    routes_patients,
    routes_payments,
    routes_practices,
    routes_settings,
    routes_team,
)
from dashboard.auth import (
    AuthProvider,
    AuthUnavailable,
    FailureLimiter,
    Identity,
    LocalAuth,
    RefreshCoalescer,
    SupabaseAuth,
    TokenVerifier,
)
from dashboard.db import make_pool
from dashboard.errors import exception_handlers
from dashboard.format import FILTERS
from dashboard.live import LiveHub
from dashboard.pages import NotSignedIn
from dashboard.runtime import Runtime
from dashboard.session import SessionMiddleware, session_of
from dashboard.settings import ROOT, DashboardSettings

HERE = ROOT / "dashboard"


def _csrf_secret(settings: DashboardSettings) -> str:
    if settings.dashboard_csrf_secret:
        return settings.dashboard_csrf_secret
    base = settings.dashboard_jwt_secret or settings.dashboard_jwks_url
    return hmac.new(base.encode(), b"mx-dashboard-csrf", hashlib.sha256).hexdigest()


def create_app(settings: DashboardSettings) -> Litestar:
    """Build the dashboard; the pool and the live listener start with the app's lifespan."""
    pool = make_pool(settings)
    verifier = TokenVerifier(
        settings.dashboard_jwt_secret,
        settings.dashboard_jwks_url,
        settings.dashboard_jwt_audience,
        settings.dashboard_jwt_issuer,
    )
    provider: AuthProvider
    if settings.uses_supabase_auth:
        provider = SupabaseAuth(settings.supabase_url, settings.supabase_anon_key)
    else:
        provider = LocalAuth(
            pool,
            settings.dashboard_jwt_secret,
            settings.dashboard_access_token_seconds,
            settings.dashboard_refresh_token_days * 86400,
            settings.dashboard_jwt_issuer,
            settings.dashboard_jwt_audience,
        )
    window = settings.dashboard_signin_window_seconds
    rt = Runtime(
        settings=settings,
        verifier=verifier,
        hub=LiveHub(settings.database_url),
        limit_email=FailureLimiter(settings.dashboard_signin_failures_per_email, window),
        limit_address=FailureLimiter(settings.dashboard_signin_failures_per_address, window),
        coalescer=RefreshCoalescer(),
        pool=pool,
        provider=provider,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)  # start while the database is down; recover later
        listener = asyncio.create_task(rt.hub.run(), name="live-listener")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await pool.close(timeout=2.0)

    async def require_identity(request: Request[Any, Any, Any]) -> Identity:
        state = session_of(request.scope)
        if state.auth_unavailable:
            raise AuthUnavailable("the identity provider is unavailable")
        if state.identity is None:
            raise NotSignedIn
        return state.identity

    def configure_jinja(engine: JinjaTemplateEngine) -> None:
        engine.engine.filters.update(FILTERS)
        engine.engine.auto_reload = False  # templates ship with the code: no stat per render
        engine.engine.globals["quote"] = quote

    return Litestar(
        route_handlers=[
            *routes_practices.routes(rt),
            *routes_memberships.routes(rt),
            *routes_patients.routes(rt),
            *routes_events.routes(rt),
            *routes_team.routes(rt),
            *routes_operator.routes(rt),
            *routes_payments.routes(rt),
            *routes_catalogue.routes(rt),
            *routes_settings.routes(rt),
            *routes_metrics.routes(rt),
            *routes_live.routes(rt),
            *routes_auth.routes(rt),
            *routes_ops.routes(rt),
            create_static_files_router(path="/static/app", directories=[HERE / "static"]),
        ],
        dependencies={"identity": Provide(require_identity)},
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(
                SessionMiddleware,
                settings=settings,
                verifier=verifier,
                provider=provider,
                coalescer=rt.coalescer,
            )
        ],
        csrf_config=CSRFConfig(
            secret=_csrf_secret(settings),
            cookie_name="mxd_csrf",
            cookie_secure=settings.dashboard_cookie_secure,
            cookie_httponly=True,
            cookie_samesite="lax",
        ),
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=configure_jinja,
        ),
        exception_handlers=exception_handlers(),
        logging_config=None,
        openapi_config=None,
        state=State({"runtime": rt}),
    )
