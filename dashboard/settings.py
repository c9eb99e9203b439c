"""Settings of the dashboard, read from the environment (no prefix), in one place."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class DashboardSettings(BaseSettings):
    """Every setting of the dashboard; each field reads the upper-case env variable."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(
        description="libpq URL of the project database, as mx_dashboard_login (it can only "
        "become authenticated)."
    )
    dashboard_host: str = Field("127.0.0.1", description="Address to bind.")
    dashboard_port: int = Field(8090, ge=0, le=65535, description="Port to bind.")
    dashboard_public_url: str = Field(
        "", description="The dashboard's public base URL (links in invitation / magic-link mail)."
    )
    dashboard_jwt_secret: str = Field(
        "",
        description="HS256 secret access tokens are verified with: the Supabase project's JWT "
        "secret, or locally the local issuer's secret (which also signs).",
    )
    dashboard_jwks_url: str = Field(
        "", description="Supabase's published signing keys (asymmetric: RS256 / ES256)."
    )
    dashboard_jwt_audience: str = Field("authenticated", description="Required `aud` claim.")
    dashboard_jwt_issuer: str = Field("", description="Required `iss` claim (empty: not checked).")
    supabase_url: str = Field(
        "", description="Supabase project URL: when set with the anon key, Supabase Auth signs in."
    )
    supabase_anon_key: str = Field("", description="Supabase anon (publishable) key.")
    dashboard_access_token_seconds: int = Field(
        3600, ge=30, description="Lifetime of access tokens the local issuer signs."
    )
    dashboard_refresh_token_days: int = Field(
        30, ge=1, description="Lifetime of local refresh tokens and of the session cookies."
    )
    dashboard_cookie_secure: bool = Field(
        True, description="Secure flag of the session cookies (browsers treat localhost as secure)."
    )
    dashboard_csrf_secret: str = Field(
        "", description="Secret of the CSRF tokens (empty: derived from the JWT secret)."
    )
    dashboard_signin_failures_per_email: int = Field(
        5, ge=1, description="Failed sign-ins per e-mail within the window before refusing."
    )
    dashboard_signin_failures_per_address: int = Field(
        20, ge=1, description="Failed sign-ins per client address within the window."
    )
    dashboard_signin_window_seconds: int = Field(
        900, ge=1, description="Window of the failed sign-in limits."
    )
    dashboard_page_size: int = Field(50, ge=10, le=200, description="Memberships per page.")
    dashboard_static_dir: Path = Field(
        ROOT / "node_modules",
        description="node_modules the front-end libraries (htmx, its SSE extension, Pico) are "
        "served from.",
    )
    dashboard_forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies trusted for X-Forwarded-For (client address)."
    )
    db_pool_min_size: int = Field(1, ge=0, description="Connections the pool keeps open.")
    db_pool_max_size: int = Field(10, ge=1, description="Most connections the pool opens.")
    db_connect_timeout_seconds: float = Field(
        2.0, gt=0, description="Longest wait for a pooled connection."
    )
    db_prepare_threshold: int | None = Field(
        None, description="psycopg prepare_threshold; empty = never (Supabase pooler)."
    )
    log_level: str = Field("INFO", description="Python log level of the JSON logs on stderr.")

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() == "":
            return None
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _some_key(self) -> DashboardSettings:
        if not self.dashboard_jwt_secret and not self.dashboard_jwks_url:
            raise ValueError("set DASHBOARD_JWT_SECRET or DASHBOARD_JWKS_URL")
        if bool(self.supabase_url) != bool(self.supabase_anon_key):
            raise ValueError("set both SUPABASE_URL and SUPABASE_ANON_KEY, or neither")
        if not self.supabase_url and not self.dashboard_jwt_secret:
            raise ValueError("the local issuer (no SUPABASE_URL) needs DASHBOARD_JWT_SECRET")
        return self

    @property
    def uses_supabase_auth(self) -> bool:
        return bool(self.supabase_url)
