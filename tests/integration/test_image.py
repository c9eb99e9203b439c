"""The container image's steps without Docker (Dockerfile): build the project's wheel, install
it into a clean virtualenv, and start each service from it with the image's command, in a
directory outside the source tree so that nothing is imported from the checkout.

Offline: the wheel and its dependencies come from the wheelhouse ``make setup`` fills
(``.run/wheelhouse``, the same packages pip would fetch from the index in the image)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from scripts.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".run" / "wheelhouse"
APPLICATION = {"common", "webhook", "worker", "dashboard"}
# (the image's command, extra environment, the URL that must answer, what it must contain)
SERVICES = {
    "webhook": (
        ["python", "-m", "webhook"],
        {"WEBHOOK_PORT": "{port}"},
        "http://127.0.0.1:{port}/readyz",
        '"ready"',
    ),
    "worker": (
        ["python", "-m", "worker", "run"],
        {"WORKER_METRICS_PORT": "{port}", "WORKER_METRICS_HOST": "127.0.0.1"},
        "http://127.0.0.1:{port}/metrics",
        "mx_worker_",
    ),
    # a page rendered from the wheel's templates; the npm libraries from DASHBOARD_STATIC_DIR
    "dashboard": (
        ["python", "-m", "dashboard"],
        {
            "DASHBOARD_PORT": "{port}",
            "DASHBOARD_JWT_SECRET": "image-test-secret-of-enough-length-0123456789",
            "DASHBOARD_STATIC_DIR": str(ROOT / "node_modules"),
        },
        "http://127.0.0.1:{port}/auth/sign-in",
        "/static/vendor/htmx.min.js",
    ),
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv with the project's wheel installed; yields its bin directory."""
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"{WHEELHOUSE} is empty: run `make setup`")
    base = tmp_path_factory.mktemp("image")
    dist = base / "dist"
    pip_offline = ["--no-index", "--find-links", str(WHEELHOUSE)]
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *pip_offline]
    subprocess.run(
        [*build, "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("mx_memberships-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        top_level = {name.split("/")[0] for name in wheel.namelist()}
    shipped = {name for name in top_level if not name.endswith((".dist-info", ".data"))}
    assert shipped <= APPLICATION, f"the wheel ships more than the application: {shipped}"
    assert {"common", "webhook", "worker"} <= shipped, shipped
    venv.create(base / "venv", with_pip=True, clear=True)
    bindir = base / "venv" / "bin"
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "-q", *pip_offline, str(wheels[0])],
        check=True,
        capture_output=True,
    )
    return bindir


def test_the_dockerfile_starts_the_tested_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for command, *_ in SERVICES.values():
        assert f"docker run IMAGE {' '.join(command)}" in dockerfile, command
    assert 'CMD ["python", "-m", "webhook"]' in dockerfile


def test_the_development_tools_are_not_installed(installed: Path, tmp_path: Path) -> None:
    for module in ("tests", "scripts", "mxstandin"):
        done = subprocess.run(
            [str(installed / "python"), "-c", f"import {module}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0, f"{module} importable from the installed wheel"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_starts_from_the_wheel(
    installed: Path, db_url: str, tmp_path: Path, service: str
) -> None:
    command, extra, url, expected = SERVICES[service]
    port = str(free_port())
    env = {
        "PATH": f"{installed}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DATABASE_URL": db_url,
        **{name: value.format(port=port) for name, value in extra.items()},
    }
    log = tmp_path / f"{service}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline and expected not in body:
            assert proc.poll() is None, f"{service} exited:\n{log.read_text()}"
            try:
                body = httpx.get(url.format(port=port), timeout=2).text
            except httpx.HTTPError:
                time.sleep(0.3)
        assert expected in body, f"{url} never answered with {expected!r}:\n{log.read_text()}"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    # a graceful stop: uvicorn ends by re-raising SIGTERM once shut down (exit 143 in Docker)
    assert code in (0, -signal.SIGTERM), f"{service} stopped with {code}:\n{log.read_text()}"
