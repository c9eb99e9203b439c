"""Routes: health, readiness and the vendored static assets."""

from __future__ import annotations

from typing import Final

import psycopg
from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.response import File
from psycopg_pool import PoolTimeout

from dashboard.runtime import Runtime

VENDOR: Final = {
    "htmx.min.js": ("htmx.org/dist/htmx.min.js", "text/javascript"),
    "sse.js": ("htmx-ext-sse/dist/sse.js", "text/javascript"),
    "pico.min.css": ("@picocss/pico/css/pico.min.css", "text/css"),
    "chart.umd.min.js": ("chart.js/dist/chart.umd.min.js", "text/javascript"),
}


def routes(rt: Runtime) -> list[HTTPRouteHandler]:
    """Routes: health, readiness and the vendored static assets."""
    settings = rt.settings
    pool = rt.pool

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz() -> Response[dict[str, str]]:
        try:
            async with pool.connection(timeout=settings.db_connect_timeout_seconds) as conn:
                await conn.execute("select 1")
        except (psycopg.OperationalError, PoolTimeout):
            return Response(
                {"status": "database unavailable"}, status_code=503, headers={"Retry-After": "5"}
            )
        return Response({"status": "ready", "live": str(rt.hub.connected.is_set()).lower()})

    @get("/static/vendor/{name:str}")
    async def vendor(name: str) -> File:
        entry = VENDOR.get(name)
        if entry is None:
            raise NotFoundException("no such file")
        path = settings.dashboard_static_dir / entry[0]
        if not path.is_file():
            raise NotFoundException(f"{entry[0]} is missing: run make setup")
        return File(
            path=path,
            media_type=entry[1],
            content_disposition_type="inline",
            headers={"cache-control": "public, max-age=3600"},
        )

    return [healthz, readyz, vendor]
