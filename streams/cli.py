"""``burnguard`` command line. Each subcommand group lives in ``streams/commands/<name>.py``
and exposes ``register(subparsers)``; add a module there and list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("broker", "worker", "publish", "demo", "alerts", "deadletter", "detect", "schemas", "incidents", "policy",
            "approvals", "audit", "db", "budgets")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; ``only``: just that one (a name in ``COMMANDS``), so that running one command
    imports only its module (``burnguard publish`` does not import the worker, the detectors and scipy)."""
    parser = argparse.ArgumentParser(prog="burnguard", description="Streaming guardrails for AI spend.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"streams.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"streams.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # a module of COMMANDS registers the command of its own name (some register more: those, and --help, get
    # every command)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
