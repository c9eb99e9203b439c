"""Alerts against local receivers: the stand-in's sink as the Slack webhook, a tiny SMTP sink
for e-mail. Each alert is delivered once per channel however often, and from however many
processes, the check runs; a failed delivery is tried again at the next check."""

from __future__ import annotations

import asyncio
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mxstandin.server import StandinHandle
from tests.support.merchants import Merchant, create_merchant
from tests.support.pipeline import drain, ingest, query, worker_settings
from worker import alerts
from worker.settings import WorkerSettings

STANDIN_SEED = 11

ROOT = Path(__file__).resolve().parents[2]
TRT = {"product_name": "Testosterone Cypionate 200mg/ml", "price": "150"}


# ---------------------------------------------------------------- a minimal SMTP sink


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpSink

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 sink ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 sink")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self._reply("250 ok")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                body = bytearray()
                while True:
                    chunk = self.rfile.readline()
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.add(message_from_bytes(bytes(body)))
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def add(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(str(m["Subject"]) for m in self.messages)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    yield sink
    sink.shutdown()
    sink.server_close()


def slack_texts(standin: StandinHandle, name: str = "slack") -> list[str]:
    return sorted(item["text"] for item in standin.state.sink_read(name))


def alert_env(db_url: str, standin: StandinHandle, smtp: SmtpSink, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "ALERT_SLACK_WEBHOOK_URL": f"{standin.control_url}/sink/slack",
        "ALERT_SMTP_HOST": "127.0.0.1",
        "ALERT_SMTP_PORT": str(smtp.port),
        "ALERT_SMTP_FROM": "alerts@clinic.test",
        "ALERT_EMAIL_TO": "ops@clinic.test, owner@clinic.test",
        "ALERT_SMTP_STARTTLS": "false",
        **extra,
    }


def alert_settings(env: dict[str, str]) -> WorkerSettings:
    return WorkerSettings(**{k.lower(): v for k, v in env.items()})


async def check_once(settings: WorkerSettings) -> alerts.CheckReport:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True
    ) as conn:
        return await alerts.check(conn, settings, alerts.channels_from(settings))


def run_cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "alerts", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def broken_merchant(db_url: str, standin: StandinHandle) -> Merchant:
    """A merchant whose stored API secret MX rejects: its events are dead-lettered."""
    created = standin.state.create_merchant(merchant_id=1000077001)
    return create_merchant(
        db_url,
        created["merchant_id"],
        consumer_key=created["consumer_key"],
        consumer_secret="not-the-secret",
    )


async def dead_letter_one(db_url: str, standin: StandinHandle, merchant: Merchant) -> None:
    created = standin.state.create_sale(merchant.mx_merchant_id, lines=[TRT])
    assert ingest(db_url, merchant.token, created["webhook"])[0] == "queued"
    await drain(worker_settings(db_url, standin.base_url, alert_check_seconds=0))
    assert query(db_url, "select status from app.webhook_events") == [("dead",)]


# ---------------------------------------------------------------- tests


async def test_each_alert_is_delivered_once_across_checks_and_processes(
    db_url: str, standin: StandinHandle, smtp: SmtpSink, broken_merchant: Merchant
) -> None:
    await dead_letter_one(db_url, standin, broken_merchant)
    env = alert_env(db_url, standin, smtp)

    # two processes at once, then two more checks in this one
    procs = [run_cli(env, "check", "--json") for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    settings = alert_settings(env)
    again = [await check_once(settings), await check_once(settings)]

    mid = broken_merchant.mx_merchant_id
    texts = slack_texts(standin)
    assert len(texts) == 2, texts
    assert any(f"merchant {mid}" in t and "credentials" in t for t in texts)
    assert any("Dead letters" in t for t in texts)
    assert smtp.subjects() == [
        f"[mx-worker] credentials failed: credentials_failed:{mid}",
        "[mx-worker] dead letters: dead_letters",
    ]
    for report in again:
        assert not report.sent
        # the credentials still fail: held, but sent within the repeat window; the dead letter
        # is no longer new and the queue is under its threshold, so that alert no longer holds
        assert [a.key for a in report.alerts] == [f"credentials_failed:{mid}"]
        assert sorted(report.suppressed) == [
            (f"credentials_failed:{mid}", "email"),
            (f"credentials_failed:{mid}", "slack"),
        ]
    rows = query(db_url, "select alert_key, channel, send_count from app.alert_log order by 1, 2")
    assert rows == [
        (f"credentials_failed:{mid}", "email", 1),
        (f"credentials_failed:{mid}", "slack", 1),
        ("dead_letters", "email", 1),
        ("dead_letters", "slack", 1),
    ]
    message = smtp.messages[0]
    assert message["To"] == "ops@clinic.test, owner@clinic.test"


async def test_concurrent_checks_in_one_process_send_once(
    db_url: str, standin: StandinHandle, smtp: SmtpSink, broken_merchant: Merchant
) -> None:
    await dead_letter_one(db_url, standin, broken_merchant)
    settings = alert_settings(alert_env(db_url, standin, smtp))
    reports = await asyncio.gather(*(check_once(settings) for _ in range(4)))
    sent = sorted(s for r in reports for s in r.sent)
    assert len(sent) == len(set(sent)) == 4  # 2 alerts x 2 channels, each once
    assert len(slack_texts(standin)) == 2
    assert len(smtp.messages) == 2


async def test_a_failed_delivery_is_retried_at_the_next_check(
    db_url: str, standin: StandinHandle, smtp: SmtpSink, broken_merchant: Merchant
) -> None:
    await dead_letter_one(db_url, standin, broken_merchant)
    env = alert_env(db_url, standin, smtp)
    env["ALERT_SLACK_WEBHOOK_URL"] = f"{standin.control_url}/sink/slack?status=500"
    failing = alert_settings(env)
    first = await check_once(failing)
    assert {channel for _, channel, _ in first.failed} == {"slack"}
    assert {channel for _, channel in first.sent} == {"email"}
    [(failures, error)] = query(
        db_url,
        "select failure_count, last_error from app.alert_log "
        "where alert_key = 'dead_letters' and channel = 'slack'",
    )
    assert failures == 1
    assert "500" in error

    env["ALERT_SLACK_WEBHOOK_URL"] = f"{standin.control_url}/sink/slack-ok"
    second = await check_once(alert_settings(env))
    assert sorted(second.sent) == sorted(
        [
            ("dead_letters", "slack"),
            (f"credentials_failed:{broken_merchant.mx_merchant_id}", "slack"),
        ]
    )
    assert len(slack_texts(standin, "slack-ok")) == 2
    assert len(smtp.messages) == 2  # e-mail was delivered the first time and not again


async def test_repeat_window_zero_sends_again(
    db_url: str, standin: StandinHandle, smtp: SmtpSink, broken_merchant: Merchant
) -> None:
    await dead_letter_one(db_url, standin, broken_merchant)
    env = alert_env(db_url, standin, smtp, ALERT_REPEAT_MINUTES="0")
    env.pop("ALERT_SMTP_HOST")
    settings = alert_settings(env)
    await check_once(settings)
    await check_once(settings)
    texts = slack_texts(standin)
    # the failing credentials are told again at once; the dead letter is not new any more
    assert sum("credentials failed" in t for t in texts) == 2
    assert sum("dead letters" in t for t in texts) == 1
    assert smtp.messages == []


async def test_worker_loop_delivers_alerts(
    db_url: str, standin: StandinHandle, smtp: SmtpSink, broken_merchant: Merchant
) -> None:
    created = standin.state.create_sale(broken_merchant.mx_merchant_id, lines=[TRT])
    ingest(db_url, broken_merchant.token, created["webhook"])
    settings = worker_settings(
        db_url,
        standin.base_url,
        alert_check_seconds=0.3,
        alert_slack_webhook_url=f"{standin.control_url}/sink/slack",
    )
    # two workers, each with its alert loop: still one delivery per alert
    consumers = await drain(settings, workers=2)
    assert consumers
    from worker.consumer import Consumer

    extra = [Consumer(settings) for _ in range(2)]
    tasks = [asyncio.create_task(c.run()) for c in extra]
    await asyncio.sleep(1.5)
    for c in extra:
        c.request_stop()
    await asyncio.gather(*tasks)
    assert len(slack_texts(standin)) == 2


def test_alerts_test_command_reaches_both_channels(
    db_url: str, standin: StandinHandle, smtp: SmtpSink
) -> None:
    proc = run_cli(alert_env(db_url, standin, smtp), "test")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b'"slack": "sent"' in out
    assert [i["text"] for i in standin.state.sink_read("slack")] == [
        "*[mx-worker] test: test*\nTest alert from the MX worker: if you read this, "
        "alert delivery works."
    ]
    assert smtp.subjects() == ["[mx-worker] test: test"]


def test_alerts_check_without_problems_is_all_clear(db_url: str) -> None:
    proc = run_cli({"DATABASE_URL": db_url}, "check")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"all clear" in out


def _signals(**overrides: Any) -> dict[str, Any]:
    signals: dict[str, Any] = {
        "queues": {
            "mx_ingest": {"depth": 3, "oldest_age_seconds": 5},
            "mx_ingest_dlq": {"depth": 0, "oldest_age_seconds": None},
        },
        "dead_letters": {"new": 0, "since": "x", "latest": []},
        "credentials_failed": [],
        "silent_merchants": [],
        "reconcile": {"available": False},
    }
    signals.update(overrides)
    return signals


def test_evaluate_rules() -> None:
    settings = WorkerSettings(database_url="postgresql://x", alert_dlq_threshold=5)
    assert alerts.evaluate(_signals(), settings) == []

    deep = _signals(
        queues={"mx_ingest_dlq": {"depth": 6}, "mx_ingest": {"oldest_age_seconds": 901}}
    )
    assert [a.key for a in alerts.evaluate(deep, settings)] == ["dead_letters", "oldest_message"]

    shallow = _signals(queues={"mx_ingest_dlq": {"depth": 5}})
    assert alerts.evaluate(shallow, settings) == []

    silent = _signals(
        silent_merchants=[{"mx_merchant_id": 42, "silent_hours": 30, "threshold_hours": 24}],
        reconcile={"available": True, "gaps": 3, "runs_with_gaps": 1, "failed_runs": 1},
    )
    assert [a.key for a in alerts.evaluate(silent, settings)] == [
        "merchant_silent:42",
        "reconcile_gaps",
        "reconcile_failed",
    ]
