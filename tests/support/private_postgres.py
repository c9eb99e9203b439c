"""A private Postgres cluster for tests that restart or stop the database.

Never the machine's shared server: a fresh ``initdb`` in a temporary directory, on its own
port, run as the ``postgres`` OS user when the tests run as root (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts import localdb
from scripts.procs import free_port


def _bindir() -> Path:
    return Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class PrivatePostgres:
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._ctl("-o", options, "-l", str(self.data_dir / "server.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def project_database(self, name: str = "mx") -> str:
        """A database with the platform layer and every migration, as make test builds."""
        url = self.url(name)
        subprocess.run(
            ["psql", self.url(), "-q", "-c", f'create database "{name}"'],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        localdb.apply_platform_layer(url)
        localdb.apply_migrations(url)
        return url


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="mx-private-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    subprocess.run(
        _as_postgres(
            [str(_bindir() / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cluster = PrivatePostgres(data_dir, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
