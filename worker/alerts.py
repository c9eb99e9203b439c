"""Alerts: checks over ``private.alert_signals()``, delivered to Slack and/or e-mail.

One check: in one short transaction, take ``pg_try_advisory_xact_lock`` (one process checks at
a time; the others skip), read every number in one call, decide which alerts hold, and claim
each (alert, channel) in ``app.alert_log`` through ``private.alert_claim`` (insert-on-conflict:
a key already sent on a channel within ``ALERT_REPEAT_MINUTES`` is not claimed again, whatever
process asks). After the commit, each claimed alert is delivered; a failed delivery is logged,
handed back (``private.alert_release``) and tried again at the next check. Nothing here raises
into the worker's loop. docs/observability.md lists the alert kinds and their keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from worker import metrics
from worker.settings import WorkerSettings

log = logging.getLogger("worker.alerts")

# pg_try_advisory_xact_lock key of the alert check (any constant the project uses once)
ALERT_LOCK_KEY = 7_301_120_001

SIGNALS_SQL = "select private.alert_signals(%s, %s)"
CLAIM_SQL = "select private.alert_claim(%s, %s, %s, %s, %s)"
RELEASE_SQL = "select private.alert_release(%s, %s, %s)"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    key: str
    text: str


@dataclass(slots=True)
class CheckReport:
    """What one check did: ``skipped`` when another process held the lock."""

    skipped: bool = False
    alerts: list[Alert] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (key, channel)
    suppressed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (key, channel, error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "alerts": [{"kind": a.kind, "key": a.key, "text": a.text} for a in self.alerts],
            "sent": [{"key": k, "channel": c} for k, c in self.sent],
            "suppressed": [{"key": k, "channel": c} for k, c in self.suppressed],
            "failed": [{"key": k, "channel": c, "error": e} for k, c, e in self.failed],
        }


# ---------------------------------------------------------------- deciding


def evaluate(signals: dict[str, Any], settings: WorkerSettings) -> list[Alert]:
    """The alerts that hold for these signals (``private.alert_signals()``'s answer)."""
    alerts: list[Alert] = []
    queues = signals.get("queues") or {}
    ingest = queues.get("mx_ingest") or {}
    dlq = queues.get("mx_ingest_dlq") or {}

    dead = signals.get("dead_letters") or {}
    depth = int(dlq.get("depth") or 0)
    new_dead = int(dead.get("new") or 0)
    if depth > settings.alert_dlq_threshold or new_dead > 0:
        lines = [
            f"Dead letters: {depth} in the dead-letter queue (threshold "
            f"{settings.alert_dlq_threshold}), {new_dead} new since {dead.get('since')}."
        ]
        for item in dead.get("latest") or []:
            lines.append(
                f"- event {item.get('event_id')} merchant {item.get('mx_merchant_id')} "
                f"payment {item.get('payment_id')}: {item.get('reason')}"
            )
        lines.append("Inspect them in app.webhook_events (status dead) and redrive once fixed.")
        alerts.append(Alert("dead_letters", "dead_letters", "\n".join(lines)))

    oldest = int(ingest.get("oldest_age_seconds") or 0)
    if oldest > settings.alert_oldest_message_seconds:
        alerts.append(
            Alert(
                "queue_stalled",
                "oldest_message",
                f"Ingest queue stalled: its oldest message is {oldest}s old (threshold "
                f"{settings.alert_oldest_message_seconds}s), {ingest.get('depth')} messages "
                "queued. "
                "Are the workers running and able to reach MX Merchant?",
            )
        )

    for account in signals.get("credentials_failed") or []:
        mid = account.get("mx_merchant_id")
        alerts.append(
            Alert(
                "credentials_failed",
                f"credentials_failed:{mid}",
                f"MX credentials failing for merchant {mid} ({account.get('name') or 'unnamed'}) "
                f"since {account.get('failed_at')}: {account.get('error')}. Its events are "
                "dead-lettered until the API key is replaced.",
            )
        )

    for merchant in signals.get("silent_merchants") or []:
        mid = merchant.get("mx_merchant_id")
        alerts.append(
            Alert(
                "merchant_silent",
                f"merchant_silent:{mid}",
                f"No webhook from merchant {mid} ({merchant.get('name') or 'unnamed'}) for "
                f"{merchant.get('silent_hours')}h (last {merchant.get('last_event_at')}; its usual "
                f"gap {merchant.get('usual_gap_hours')}h, threshold "
                f"{merchant.get('threshold_hours')}h). Check its webhook subscription.",
            )
        )

    reconcile = signals.get("reconcile") or {}
    if reconcile.get("available"):
        gaps = int(reconcile.get("gaps") or 0)
        failed = int(reconcile.get("failed_runs") or 0)
        if gaps > 0:
            alerts.append(
                Alert(
                    "reconcile_gaps",
                    "reconcile_gaps",
                    f"Reconciliation found {gaps} payments no webhook announced, in "
                    f"{reconcile.get('runs_with_gaps')} runs (latest "
                    f"{reconcile.get('latest_gap_at')}). "
                    "They were queued; MX may be dropping webhooks.",
                )
            )
        if failed > 0:
            alerts.append(
                Alert(
                    "reconcile_failed",
                    "reconcile_failed",
                    f"{failed} reconciliation runs failed recently; missed webhooks may go "
                    "unnoticed.",
                )
            )
    return alerts


# ---------------------------------------------------------------- delivering


class Channel(Protocol):
    name: str

    async def send(self, subject: str, text: str) -> None: ...


class SlackChannel:
    """A Slack-compatible incoming webhook: ``POST {"text": ...}``; any 2xx is delivered."""

    name = "slack"

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    async def send(self, subject: str, text: str) -> None:
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            response = await http.post(self._url, json={"text": f"*{subject}*\n{text}"})
        if not response.is_success:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}")


class EmailChannel:
    """SMTP (stdlib ``smtplib`` in a thread): optional STARTTLS and login."""

    name = "email"

    def __init__(self, settings: WorkerSettings) -> None:
        if not settings.alert_smtp_host or not settings.alert_smtp_from:
            raise ValueError("ALERT_SMTP_HOST and ALERT_SMTP_FROM are required for e-mail")
        self._host = settings.alert_smtp_host
        self._port = settings.alert_smtp_port
        self._from = settings.alert_smtp_from
        self._to = [a.strip() for a in (settings.alert_email_to or "").split(",") if a.strip()]
        self._user = settings.alert_smtp_user
        self._password = (
            settings.alert_smtp_password.get_secret_value()
            if settings.alert_smtp_password
            else None
        )
        self._starttls = settings.alert_smtp_starttls
        self._timeout = settings.alert_timeout_seconds

    def _send_sync(self, subject: str, text: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self._from
        message["To"] = ", ".join(self._to)
        message.set_content(text)
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._user:
                smtp.login(self._user, self._password or "")
            smtp.send_message(message)

    async def send(self, subject: str, text: str) -> None:
        await asyncio.to_thread(self._send_sync, subject, text)


def channels_from(settings: WorkerSettings) -> list[Channel]:
    """The configured channels (none when neither Slack nor SMTP is set)."""
    channels: list[Channel] = []
    if settings.alert_slack_webhook_url:
        channels.append(
            SlackChannel(
                settings.alert_slack_webhook_url.get_secret_value(), settings.alert_timeout_seconds
            )
        )
    if settings.alert_smtp_host and settings.alert_smtp_from and settings.alert_email_to:
        channels.append(EmailChannel(settings))
    return channels


def subject_of(alert: Alert, settings: WorkerSettings) -> str:
    return f"[{settings.alert_source}] {alert.kind.replace('_', ' ')}: {alert.key}"


async def _deliver(channel: Channel, alert: Alert, settings: WorkerSettings) -> str | None:
    """Send one alert on one channel; the error text when it failed."""
    try:
        async with asyncio.timeout(settings.alert_timeout_seconds * 2):
            await channel.send(subject_of(alert, settings), alert.text)
    except Exception as exc:  # noqa: BLE001 - any delivery failure is retried next check
        metrics.ALERT_FAILURES.labels(channel=channel.name).inc()
        return f"{type(exc).__name__}: {exc}"[:500]
    metrics.ALERTS_SENT.labels(kind=alert.kind, channel=channel.name).inc()
    return None


# ---------------------------------------------------------------- one check


async def check(
    conn: AsyncConnection[Any], settings: WorkerSettings, channels: list[Channel]
) -> CheckReport:
    """Run the checks once and deliver what is due (``conn`` in autocommit mode)."""
    report = CheckReport()
    claimed: list[tuple[Alert, Channel]] = []
    async with conn.transaction():
        cur = await conn.execute("select pg_try_advisory_xact_lock(%s)", (ALERT_LOCK_KEY,))
        row = await cur.fetchone()
        if not row or not row[0]:
            report.skipped = True
            return report
        cur = await conn.execute(
            SIGNALS_SQL, (settings.alert_silence_min_hours, settings.alert_silence_factor)
        )
        row = await cur.fetchone()
        signals: dict[str, Any] = row[0] if row and row[0] else {}
        report.alerts = evaluate(signals, settings)
        for alert in report.alerts:
            for channel in channels:
                cur = await conn.execute(
                    CLAIM_SQL,
                    (
                        alert.key,
                        channel.name,
                        alert.kind,
                        alert.text,
                        settings.alert_repeat_minutes,
                    ),
                )
                got = await cur.fetchone()
                if got and got[0]:
                    claimed.append((alert, channel))
                else:
                    report.suppressed.append((alert.key, channel.name))
    # delivered after the commit: the claims are visible to every other process by now
    for alert, channel in claimed:
        error = await _deliver(channel, alert, settings)
        if error is None:
            report.sent.append((alert.key, channel.name))
            log.warning(
                "alert sent",
                extra={"fields": {"kind": alert.kind, "key": alert.key, "channel": channel.name}},
            )
            continue
        report.failed.append((alert.key, channel.name, error))
        log.error(
            "alert delivery failed, retried at the next check",
            extra={
                "fields": {
                    "kind": alert.kind,
                    "key": alert.key,
                    "channel": channel.name,
                    "error": error,
                }
            },
        )
        await conn.execute(RELEASE_SQL, (alert.key, channel.name, error))
    return report


async def send_test(settings: WorkerSettings, channels: list[Channel]) -> dict[str, str | None]:
    """Send a test alert on every channel (no de-duplication); channel -> error or None."""
    alert = Alert(
        "test",
        "test",
        "Test alert from the MX worker: if you read this, alert delivery works.",
    )
    return {channel.name: await _deliver(channel, alert, settings) for channel in channels}


# ---------------------------------------------------------------- in the worker


class AlertLoop:
    """Runs :func:`check` every ``ALERT_CHECK_SECONDS`` on the worker's pool; never raises."""

    def __init__(self, pool: AsyncConnectionPool[Any], settings: WorkerSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._channels = channels_from(settings)

    async def run(self) -> None:
        interval = self._settings.alert_check_seconds
        while True:
            await asyncio.sleep(interval)  # a stop while waiting ends the loop at once
            # a stop during a check waits for it: cancelled between its claims and their
            # delivery, the claimed alerts would be suppressed for ALERT_REPEAT_MINUTES
            # without anyone having been told (each delivery is bounded by its timeout)
            running = asyncio.ensure_future(self._check_once())
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                await running
                raise

    async def _check_once(self) -> None:
        try:
            async with self._pool.connection() as conn:
                report = await check(conn, self._settings, self._channels)
        except Exception as exc:  # noqa: BLE001 - the next check tries again
            log.error("alert check failed", extra={"fields": {"error": str(exc)[:300]}})
            return
        if report.alerts and not self._channels:
            log.warning(
                "alerts hold but no channel is configured",
                extra={"fields": {"alerts": [a.key for a in report.alerts]}},
            )


def observability_tasks(
    pool: AsyncConnectionPool[Any], settings: WorkerSettings
) -> list[asyncio.Task[None]]:
    """The worker's background tasks: queue gauges and the alert loop (cancel them at stop)."""
    tasks: list[asyncio.Task[None]] = []
    if settings.worker_metrics_port != 0:
        gauges = metrics.QueueGauges(pool, settings.worker_metrics_refresh_seconds)
        tasks.append(asyncio.create_task(gauges.run(), name="queue-gauges"))
    if settings.alert_check_seconds > 0:
        tasks.append(asyncio.create_task(AlertLoop(pool, settings).run(), name="alert-loop"))
    return tasks


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def dumps(report: CheckReport) -> str:
    return json.dumps(report.as_dict(), default=str, indent=2)
