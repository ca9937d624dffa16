"""``burnguard db upgrade|current``: migrate the store (Alembic) to the newest schema, or show its revision."""

from __future__ import annotations

import argparse

from sinks.migrations import current_revision, head_revision, upgrade
from streams.commands.guardrail_common import guarded, shown_url
from streams.settings import Settings


def run_upgrade(args: argparse.Namespace) -> int:
    def go() -> int:
        url = Settings().database_url
        print(f"{shown_url(url)}: at revision {upgrade(url)} (newest {head_revision()})")
        return 0
    return guarded(go)


def run_current(args: argparse.Namespace) -> int:
    def go() -> int:
        url = Settings().database_url
        print(f"{shown_url(url)}: revision {current_revision(url) or 'none'} (newest {head_revision()})")
        return 0
    return guarded(go)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database schema migrations")
    nested = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    nested.add_parser("upgrade", help="migrate to the newest schema").set_defaults(func=run_upgrade)
    nested.add_parser("current", help="show the schema revision").set_defaults(func=run_current)
