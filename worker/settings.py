"""Worker settings: read from the environment, in this one place (README: "Settings")."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(description="Postgres URL of the worker's login role")
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_connect_timeout_seconds: float = 5.0
    # None (the default) disables prepared statements, which the Supabase transaction pooler
    # requires; set a number (e.g. 5) on a direct or session-pooled connection.
    db_prepare_threshold: int | None = None
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

    # -- synchronisation and scheduled work (docs/sync.md) ------------------------------------
    scheduler_enabled: bool = Field(
        True, description="run the scheduler (reconcile, contract sync, retention) in `worker run`"
    )
    scheduler_initial_delay_seconds: float = Field(
        30.0, ge=0, description="wait this long after start before competing for the scheduler lock"
    )
    scheduler_tick_seconds: float = Field(
        30.0, gt=0, description="how often the scheduler checks the lock and what is due"
    )
    reconcile_interval_minutes: float = Field(
        15.0, gt=0, description="reconcile each merchant's payments this often"
    )
    reconcile_overlap_minutes: float = Field(
        60.0,
        ge=0,
        description="reconcile re-reads this far behind its watermark (same-second "
        "timestamps, late settlement)",
    )
    reconcile_initial_lookback_hours: float = Field(
        72.0, gt=0, description="how far back the first reconcile of a merchant looks"
    )
    contract_sync_interval_minutes: float = Field(
        60.0, gt=0, description="refresh each merchant's recurring contracts this often"
    )
    sync_page_size: int = Field(100, ge=1, le=100, description="records per MX list call")
    mx_max_calls_per_minute_per_merchant: int = Field(
        60, ge=1, description="sync calls to MX per merchant per minute (token bucket)"
    )
    retention_interval_minutes: float = Field(
        60.0, gt=0, description="run retention pruning and the overdue sweep this often"
    )
    retention_event_days: int = Field(
        30,
        ge=1,
        description="keep processed/ignored/rejected webhook events and finished sync runs "
        "this many days",
    )
    retention_archive_days: int = Field(
        7, ge=1, description="keep pgmq archive rows (mx_ingest, mx_ingest_dlq) this many days"
    )
    retention_batch_size: int = Field(
        5000, ge=1, description="rows deleted per statement (one transaction each) when pruning"
    )
    sync_request_poll_seconds: float = Field(
        5.0, gt=0, description="how often every worker looks for dashboard sync requests"
    )
    sync_request_reclaim_minutes: float = Field(
        15.0,
        gt=0,
        description="a claimed sync request with no heartbeat this long is claimed again",
    )
    sync_request_max_attempts: int = Field(
        3, ge=1, description="claims of one sync request before it is recorded as failed"
    )

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

    # -- observability and alerts (docs/observability.md) ---------------------------------------
    worker_metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="port of the Prometheus /metrics endpoint of `worker run` (0 disables); "
        "each worker process needs its own",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="address the metrics endpoint binds to (loopback by default: metrics show "
        "platform-wide counts; open it only to the scraper's network)",
    )
    worker_metrics_refresh_seconds: float = Field(
        5.0,
        gt=0,
        description="queue gauges are read from Postgres at most this often, while scraped",
    )
    alert_check_seconds: float = Field(
        60.0, ge=0, description="run the alert checks this often in `worker run` (0 disables)"
    )
    alert_repeat_minutes: int = Field(
        60, ge=0, description="the same alert key is not sent again on a channel within this time"
    )
    alert_slack_webhook_url: SecretStr | None = Field(
        None, description='Slack-compatible incoming webhook URL (POST {"text": ...})'
    )
    alert_smtp_host: str | None = Field(None, description="SMTP server for alert e-mail")
    alert_smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    alert_smtp_from: str | None = Field(None, description="From address of alert e-mail")
    alert_email_to: str | None = Field(None, description="alert recipients, comma-separated")
    alert_smtp_user: str | None = Field(None, description="SMTP login (optional)")
    alert_smtp_password: SecretStr | None = Field(None, description="SMTP password (optional)")
    alert_smtp_starttls: bool = Field(True, description="upgrade the SMTP connection with STARTTLS")
    alert_timeout_seconds: float = Field(10.0, gt=0, description="timeout of one alert delivery")
    alert_source: str = Field(
        "mx-worker", description="name in the alert subject (which deployment is speaking)"
    )
    alert_dlq_threshold: int = Field(
        10, ge=0, description="alert when the dead-letter queue holds more messages than this"
    )
    alert_oldest_message_seconds: int = Field(
        900, ge=1, description="alert when the oldest ingest message is older than this"
    )
    alert_silence_min_hours: float = Field(
        24.0, gt=0, description="a merchant is silent after max(this, factor x its usual gap)"
    )
    alert_silence_factor: float = Field(
        3.0, gt=0, description="k in max(ALERT_SILENCE_MIN_HOURS, k x usual gap between webhooks)"
    )

    @field_validator(
        "alert_slack_webhook_url",
        "alert_smtp_host",
        "alert_smtp_from",
        "alert_email_to",
        "alert_smtp_user",
        "alert_smtp_password",
        mode="before",
    )
    @classmethod
    def _empty_alert_setting_is_none(cls, value: object) -> object:
        return None if value == "" else value
