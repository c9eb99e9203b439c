"""Private Postgres clusters built with the machine's Postgres binaries (Debian's
``postgresql-NN`` package): ``initdb`` a data directory, start and stop it with ``pg_ctl``.

Two users: the fallback database of every command (``.localdb/cluster``, see
``scripts/localdb.py``) and the tests that restart or stop Postgres
(``tests/support/private_postgres.py``). Never the machine's shared server. When the
commands run as root the cluster runs as the ``postgres`` OS user (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def postgres_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``pg_config --bindir`` when it has them,
    else the newest ``/usr/lib/postgresql/NN/bin``; None when the machine has none."""
    try:
        bindir = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        if (bindir / "initdb").exists():
            return bindir
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _bindir() -> Path:
    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit(
            "no Postgres binaries (initdb, pg_ctl) on this machine: "
            "install Debian's postgresql-15 package (make system-packages)"
        )
    return bindir


def as_postgres(args: list[str]) -> list[str]:
    """``args`` run as the ``postgres`` OS user when we are root, else as ourselves."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def init_cluster(data_dir: Path) -> None:
    """``initdb`` an empty ``data_dir``: user postgres, trust authentication, UTF-8."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    subprocess.run(
        as_postgres(
            [
                str(_bindir() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def pg_ctl(data_dir: Path, *args: str) -> None:
    """``pg_ctl -D data_dir -w ARGS``; its output goes to ``data_dir/pg_ctl.log``."""
    with open(data_dir / "pg_ctl.log", "ab") as log:
        subprocess.run(
            as_postgres([str(_bindir() / "pg_ctl"), "-D", str(data_dir), "-w", *args]),
            check=True,
            stdout=log,
            stderr=log,
        )


def start_cluster(data_dir: Path, options: str) -> None:
    """Start ``data_dir`` with server ``options`` (``-c name=value ...``), logging to
    ``data_dir/server.log``."""
    pg_ctl(data_dir, "-o", options, "-l", str(data_dir / "server.log"), "start")
