"""``burnguard approvals [--state pending]``, ``burnguard approve ID --as USER [--amount USD] [--reason]``,
``burnguard deny ID --as USER --reason``: the approval workflow without Slack, same authorisation rules.

``--amount`` approves less than requested (at most the request; the approver's limit applies to it), as
the amount in Slack's approval modal does: both parse it with :func:`guardrails.approvals.parse_amount`
and decide through :meth:`sinks.guardrail_store.GuardrailStore.approve`.

``burnguard approvals --json`` prints the requests as a JSON array (the stored
:class:`~guardrails.approvals.ApprovalRequest` fields) for scripts."""

from __future__ import annotations

import argparse
import sys

import orjson

from rich.console import Console
from rich.table import Table

from guardrails.approvals import Refused, parse_amount
from schemas.text import safe_terminal
from sinks.guardrail_store import NotFound
from streams.commands.guardrail_common import guarded, load_approvers, open_store


def run_list(args: argparse.Namespace) -> int:
    def go() -> int:
        with open_store() as store:
            rows = store.approvals(state=args.state, budget_id=args.budget)
        if args.json:
            sys.stdout.buffer.write(orjson.dumps([r.model_dump(mode="json") for r in rows],
                                                 option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
            sys.stdout.flush()
            return 0
        table = Table(title=f"approval requests ({args.state or 'all'})")
        for col in ("id", "state", "budget", "rule", "group", "USD", "deadline (UTC)", "decided by", "reason"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.approval_id, r.state, safe_terminal(r.budget_id), safe_terminal(r.rule),
                          safe_terminal(r.group), f"{r.amount_usd:,.2f}", f"{r.deadline:%Y-%m-%d %H:%M}",
                          safe_terminal(r.decided_by or ""), safe_terminal(r.reason or ""))
        Console().print(table)
        return 0
    return guarded(go)


def _decide(args: argparse.Namespace, verb: str) -> int:
    amount = None
    if verb == "approve":
        try:
            amount = parse_amount(args.amount)
        except ValueError as err:
            print(f"error: --amount: {safe_terminal(str(err))}", file=sys.stderr)
            return 2

    def go() -> int:
        approvers = load_approvers()
        with open_store() as store:
            try:
                if verb == "approve":
                    out = store.approve(args.id, args.user, approvers, reason=args.reason, amount_usd=amount)
                else:
                    out = store.deny(args.id, args.user, approvers, reason=args.reason or "")
            except (Refused, NotFound) as err:
                msg = err.args[0] if err.args else str(err)
                print(f"refused: {safe_terminal(msg)}", file=sys.stderr)
                return 1
        d = out.decision
        shown = f" {d.amount_usd:,.2f} USD" if d is not None and d.amount_usd is not None else ""
        print(f"{args.id}: {out.transition.after.state} by {safe_terminal(args.user)}"
              + (f"; decision {d.action}{shown} on budget {safe_terminal(d.budget_id)}" if d else ""))
        return 0
    return guarded(go)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("approvals", help="list approval requests")
    p.add_argument("--state", choices=["pending", "approved", "denied", "expired", "escalated"], default=None)
    p.add_argument("--budget", default=None, help="only this budget id")
    p.add_argument("--json", action="store_true", help="print the requests as JSON")
    p.set_defaults(func=run_list)
    a = sub.add_parser("approve", help="approve a pending request (a member of its group, within their limit)")
    a.add_argument("id", metavar="ID")
    a.add_argument("--as", dest="user", required=True, metavar="USER", help="Slack user id or name")
    a.add_argument("--amount", default=None, metavar="USD",
                   help="approve this much (more than 0, at most the amount requested); default: all of it")
    a.add_argument("--reason", default=None)
    a.set_defaults(func=lambda args: _decide(args, "approve"))
    d = sub.add_parser("deny", help="deny a pending request (a member of its group; a reason is required)")
    d.add_argument("id", metavar="ID")
    d.add_argument("--as", dest="user", required=True, metavar="USER", help="Slack user id or name")
    d.add_argument("--reason", required=True)
    d.set_defaults(func=lambda args: _decide(args, "deny"))
