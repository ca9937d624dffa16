"""``burnguard audit [--budget ID]`` lists the audit log; ``burnguard audit verify`` checks its hash chain."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from schemas.text import safe_terminal
from streams.commands.guardrail_common import guarded, open_store


def run_list(args: argparse.Namespace) -> int:
    def go() -> int:
        with open_store() as store:
            records = store.audit(budget_id=args.budget)
        table = Table(title="audit log" + (f" (budget {safe_terminal(args.budget)})" if args.budget else ""))
        for col in ("#", "at (UTC)", "event", "actor", "budget", "rule", "action", "USD", "reason", "hash"):
            table.add_column(col)
        for r in records:
            table.add_row(str(r.seq), f"{r.at:%Y-%m-%d %H:%M:%S}", r.event, safe_terminal(r.actor),
                          safe_terminal(r.budget_id or ""), safe_terminal(r.rule or ""), r.action or "",
                          "" if r.amount_usd is None else f"{r.amount_usd:,.2f}", safe_terminal(r.reason or ""),
                          r.hash[:12])
        Console().print(table)
        return 0
    return guarded(go)


def run_verify(args: argparse.Namespace) -> int:
    def go() -> int:
        with open_store() as store:
            problems = store.verify_audit()
            n = len(store.audit())
        if problems:
            for p in problems:
                print(f"audit: {safe_terminal(p.text())}", file=sys.stderr)
            print(f"audit verify: FAILED ({len(problems)} problem(s) in {n} record(s))", file=sys.stderr)
            return 1
        print(f"audit verify: ok, {n} record(s), chain intact")
        return 0
    return guarded(go)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="list the guardrail audit log, or verify its hash chain")
    p.add_argument("--budget", default=None, help="only this budget id")
    p.set_defaults(func=run_list)
    nested = p.add_subparsers(dest="audit_command", required=False, metavar="ACTION")
    v = nested.add_parser("verify", help="check that no record was edited or deleted")
    v.set_defaults(func=run_verify)
