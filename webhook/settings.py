"""Settings of the webhook receiver, read from the environment (no prefix), in one place."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the webhook receiver; each field reads the upper-case env variable."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(description="libpq URL of the project database (role mx_webhook).")
    webhook_host: str = Field("127.0.0.1", description="Address uvicorn binds to.")
    webhook_port: int = Field(8080, ge=0, le=65535, description="Port uvicorn binds to.")
    webhook_workers: int = Field(
        1, ge=1, description="Server processes on the port (about one per core)."
    )
    webhook_max_body_bytes: int = Field(65536, gt=0, description="Larger bodies get 413.")
    webhook_rate_per_token: float = Field(
        50.0,
        ge=0,
        description="Requests per second per callback token (0 disables), enforced in Postgres: "
        "the limit holds across every webhook process and host.",
    )
    webhook_burst_per_token: int = Field(100, ge=1, description="Burst size per callback token.")
    webhook_rejects_per_hour: int = Field(
        100,
        ge=0,
        description="Rejected requests stored per merchant account an hour (0: no cap); the "
        "rest are counted in app.webhook_reject_counts, not stored.",
    )
    webhook_rate_per_address: float = Field(
        200.0,
        ge=0,
        description="Requests per second per client address, per process (0 disables).",
    )
    webhook_burst_per_address: int = Field(400, ge=1, description="Burst size per client address.")
    webhook_rate_limit_max_keys: int = Field(
        10000, ge=1, description="Most address buckets kept per process; idle ones evicted first."
    )
    webhook_metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the Prometheus /metrics endpoint (loopback by default; never the "
        "webhook's public port).",
    )
    webhook_metrics_port: int = Field(
        9465,
        ge=0,
        le=65535,
        description="Port of the /metrics endpoint (0 disables); with WEBHOOK_WORKERS=n each "
        "process takes the first free port of port .. port+n-1.",
    )
    webhook_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 when the database is unavailable."
    )
    webhook_forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies trusted for X-Forwarded-For (uvicorn forwarded_allow_ips).",
    )
    db_pool_min_size: int = Field(1, ge=0, description="Connections the pool keeps open.")
    db_pool_max_size: int = Field(10, ge=1, description="Most connections the pool opens.")
    db_connect_timeout_seconds: float = Field(
        2.0, gt=0, description="Longest wait for a pooled connection (and libpq connect timeout)."
    )
    db_reconnect_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="How long the pool retries a failed connection (backoff) before starting over.",
    )
    db_statement_timeout_ms: int = Field(
        5000, ge=0, description="statement_timeout set on every connection (0 = server default)."
    )
    db_prepare_threshold: int | None = Field(
        None,
        description="psycopg prepare_threshold; empty = never (Supabase transaction pooler).",
    )
    log_level: str = Field("INFO", description="Python log level of the JSON logs on stderr.")

    @model_validator(mode="after")
    def _metrics_apart(self) -> Settings:
        first = self.webhook_metrics_port
        last = first + self.webhook_workers - 1
        if first and self.webhook_port and first <= self.webhook_port <= last:
            raise ValueError(
                "WEBHOOK_METRICS_PORT (and the next WEBHOOK_WORKERS - 1 ports) must not include "
                "WEBHOOK_PORT: metrics are never served on the public port"
            )
        return self

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
