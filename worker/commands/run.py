"""``python -m worker run``: the queue consumer."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from common.logs import configure_logging
from worker.consumer import run_worker
from worker.settings import WorkerSettings


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "run",
        help="consume the ingest queue until SIGTERM/SIGINT",
        description="Consume the ingest queue: fetch each payment from MX Merchant and apply it. "
        "Settings come from the environment (README, Settings).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = WorkerSettings()  # DATABASE_URL and the rest from the environment
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))
    return 0
