"""Command line of the worker and of operators: ``python -m worker --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from worker.commands import (
    alerts,
    deadletters,
    legacy,
    members,
    merchants,
    operators,
    practices,
    run,
    status,
    subscriptions,
)
from worker.commands import sync as sync_commands
from worker.commands.common import CommandError

# Each module adds its sub-commands; see worker/commands/__init__.py.
COMMAND_MODULES = [
    run,
    alerts,
    sync_commands,
    practices,
    merchants,
    members,
    operators,
    subscriptions,
    deadletters,
    status,
    legacy,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="MX Merchant ingest worker and operator commands.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
