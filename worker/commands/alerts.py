"""``python -m worker alerts check|test``: run the alert checks now, or send a test alert.

Both read the worker's settings from the environment (``DATABASE_URL``, ``ALERT_*``); see
docs/observability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import psycopg
from pydantic import ValidationError

from common.logs import configure_logging
from worker import alerts
from worker.commands.common import CommandError, add_json_flag
from worker.settings import WorkerSettings


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "alerts",
        help="run the alert checks now, or send a test alert",
        description="Alerts to Slack and/or e-mail (ALERT_* settings, docs/observability.md).",
    )
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="run the checks once and deliver what is due (de-duplicated like the worker's)",
    )
    add_json_flag(check)
    check.set_defaults(handler=run_check)
    test = sub.add_parser("test", help="send a test alert to every configured channel")
    test.set_defaults(handler=run_test)


def _settings() -> WorkerSettings:
    try:
        settings = WorkerSettings()
    except ValidationError as exc:
        raise CommandError(f"invalid settings: {exc}") from exc
    configure_logging(settings.log_level)
    return settings


async def _check(settings: WorkerSettings) -> alerts.CheckReport:
    try:
        conn = await psycopg.AsyncConnection.connect(
            settings.database_url, autocommit=True, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot connect to the database: {str(exc).strip()}") from exc
    async with conn:
        return await alerts.check(conn, settings, alerts.channels_from(settings))


def run_check(args: argparse.Namespace) -> int:
    settings = _settings()
    report = asyncio.run(_check(settings))
    if args.json:
        print(alerts.dumps(report))
    elif report.skipped:
        print("another process is running the checks right now; nothing done")
    else:
        if not alerts.channels_from(settings):
            print("no channel configured (ALERT_SLACK_WEBHOOK_URL, ALERT_SMTP_*): not delivered")
        for alert in report.alerts:
            print(f"{alert.kind:20} {alert.key}")
        for key, channel in report.sent:
            print(f"sent        {channel:6} {key}")
        for key, channel in report.suppressed:
            print(f"suppressed  {channel:6} {key} (sent within ALERT_REPEAT_MINUTES)")
        for key, channel, error in report.failed:
            print(f"FAILED      {channel:6} {key}: {error}")
        if not report.alerts:
            print("all clear")
    return 1 if report.failed else 0


def run_test(args: argparse.Namespace) -> int:
    settings = _settings()
    channels = alerts.channels_from(settings)
    if not channels:
        raise CommandError("no alert channel configured (ALERT_SLACK_WEBHOOK_URL or ALERT_SMTP_*)")
    results = asyncio.run(alerts.send_test(settings, channels))
    print(json.dumps({name: error or "sent" for name, error in results.items()}, indent=2))
    return 1 if any(results.values()) else 0
