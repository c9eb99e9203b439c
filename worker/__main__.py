"""Command line of the worker and of operators: ``python -m worker --help``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from worker.consumer import run_worker
from worker.logs import configure_logging
from worker.settings import WorkerSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="MX Merchant ingest worker and operator commands.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="consume the ingest queue until SIGTERM/SIGINT",
        description="Consume the ingest queue: fetch each payment from MX Merchant and apply it. "
        "Settings come from the environment (README, Settings).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        settings = WorkerSettings()  # DATABASE_URL and the rest from the environment
        configure_logging(settings.log_level)
        asyncio.run(run_worker(settings))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
