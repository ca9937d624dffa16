"""``burnguard`` command line. Each subcommand group lives in ``streams/commands/<name>.py``
and exposes ``register(subparsers)``; add a module there and list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("broker", "worker", "publish", "demo", "alerts", "deadletter", "detect", "schemas", "incidents", "policy",
            "approvals", "audit", "db", "budgets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="burnguard", description="Streaming guardrails for AI spend.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"streams.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"streams.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
