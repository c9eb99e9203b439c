"""A private Postgres cluster for tests that restart or stop the database.

Never the machine's shared server: a fresh ``initdb`` in a temporary directory, on its own
port (``scripts/cluster.py``: run as the ``postgres`` OS user when the tests run as root).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts import localdb
from scripts.cluster import init_cluster, pg_ctl, start_cluster
from scripts.procs import free_port


@dataclass
class PrivatePostgres:
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        start_cluster(self.data_dir, options)

    def stop(self) -> None:
        pg_ctl(self.data_dir, "-m", "fast", "stop")

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
    init_cluster(data_dir)
    cluster = PrivatePostgres(data_dir, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
