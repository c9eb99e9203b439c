"""Worker settings: read from the environment, in this one place (README: "Settings")."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(description="Postgres URL of the worker's login role")
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_connect_timeout_seconds: float = 5.0
    # None disables prepared statements: required behind the Supabase transaction pooler.
    db_prepare_threshold: int | None = 5
    db_statement_timeout_ms: int = 30_000

    worker_concurrency: int = Field(8, ge=1, description="events processed at once")
    worker_batch_size: int = Field(10, ge=1, description="messages read per queue read")
    worker_visibility_seconds: int = Field(
        120, ge=2, description="how long a read message stays hidden; extended while working"
    )
    worker_poll_interval_seconds: float = Field(0.5, gt=0, description="sleep when idle")
    worker_max_attempts: int = Field(8, ge=1, description="attempts before dead-lettering")
    worker_backoff_base_seconds: float = Field(2.0, gt=0)
    worker_backoff_max_seconds: float = Field(600.0, gt=0)
    worker_shutdown_grace_seconds: float = Field(
        20.0, ge=0, description="on SIGTERM, time to finish in-flight events before releasing them"
    )
    worker_credentials_cache_seconds: float = 300.0

    mx_base_url: str | None = Field(
        None, description="overrides the MX API base URL for every environment (stand-in, proxy)"
    )
    mx_connect_timeout_seconds: float = 5.0
    mx_read_timeout_seconds: float = 15.0
    mx_total_timeout_seconds: float = 30.0
    mx_per_merchant_concurrency: int = Field(4, ge=1)

    log_level: str = "INFO"

    @field_validator("db_prepare_threshold", "mx_base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _visibility_covers_mx_calls(self) -> WorkerSettings:
        # A message must stay hidden longer than one MX call can take, or a slow job would
        # be handed to a second worker while the first is still on it.
        if self.worker_visibility_seconds < 2 * self.mx_total_timeout_seconds:
            raise ValueError(
                "WORKER_VISIBILITY_SECONDS must be at least twice MX_TOTAL_TIMEOUT_SECONDS"
            )
        return self
