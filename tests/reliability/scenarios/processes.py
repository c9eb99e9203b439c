"""The services as separate OS processes, as in production: start, stop, tail their logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from scripts.procs import free_port
from tests.reliability.scenarios.traffic import ROOT

# ------------------------------------------------------------------ processes


def worker_env(db_url: str, mx_base_url: str, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MX_BASE_URL": mx_base_url,
        "WORKER_POLL_INTERVAL_SECONDS": "0.05",
        "WORKER_BACKOFF_BASE_SECONDS": "0.5",
        "WORKER_BACKOFF_MAX_SECONDS": "2",
        "MX_CONNECT_TIMEOUT_SECONDS": "2",
        "MX_READ_TIMEOUT_SECONDS": "2",
        "MX_TOTAL_TIMEOUT_SECONDS": "2",
        "WORKER_VISIBILITY_SECONDS": "4",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
        "WORKER_METRICS_PORT": "0",  # several workers on one machine
        "SCHEDULER_ENABLED": "false",  # no reconcile calls to muddy the counts
        "ALERT_CHECK_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m worker run``; stderr to a file (a pipe nobody reads would block it)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def start_webhook_process(
    db_url: str, log_path: Path, **overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m webhook`` on a free loopback port; waits for /healthz."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_RATE_PER_TOKEN": "0",
        "WEBHOOK_RATE_PER_ADDRESS": "0",
        "DB_CONNECT_TIMEOUT_SECONDS": "1",
        "DB_RECONNECT_TIMEOUT_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webhook"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"webhook did not start; see {log_path}")
        time.sleep(0.1)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Background(threading.Thread):
    """A thread whose exception is re-raised by ``join_or_raise``."""

    def __init__(self, target: Any, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc

    def join_or_raise(self, timeout: float | None = None) -> None:
        self.join(timeout)
        if self.error is not None:
            raise self.error
