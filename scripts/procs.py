"""The local processes `make demo` and `make bench` run: start, wait for, stop.

Every child gets its own session (Ctrl-C reaches the parent only, which then stops each
child in order) and writes its output to ``<log_dir>/<name>.log``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start(
    name: str, args: list[str], env: dict[str, str], log_dir: Path
) -> subprocess.Popen[bytes]:
    """``python <args>`` with ``env`` added to ours."""
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_standin(
    log_dir: Path, seed: int, id_offset: int = 0
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The MX stand-in on a free port; its first output line says where (base and control URLs).
    ``id_offset``: added to every id it hands out (see ``python -m mxstandin --help``)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mxstandin",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--id-offset",
            str(id_offset),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(log_dir / "mx-standin.log").open("wb"),
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the MX stand-in did not start (see {log_dir}/mx-standin.log)")
    return proc, json.loads(line)


def wait_http(url: str, log_dir: Path, timeout: float = 30) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready (see {log_dir}/*.log)")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each in the order given, then wait for each (kill after 30 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
