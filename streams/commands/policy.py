"""``burnguard policy check|test|explain|docs``: validate, test and explain a guardrail policy file.

- ``check FILE``: exit 0, or 1 with every error as ``file:line: field: problem``;
- ``test FILE --cases CASES.yaml``: pass/fail per case (expected rule and action), exit 1 on a failure;
- ``explain FILE --overrun JSON|@file [--json]``: the deciding rule and why each earlier one did not apply;
- ``docs [--out PATH]``: the policy reference generated from the registries (docs/policies.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from guardrails.approvers import Approvers
from guardrails.policy import ConfigError, Policy, evaluate, load_policy
from guardrails.policy.cases import CasesFile, OverrunCase
from guardrails.policy.docs import render
from schemas.text import safe_terminal
from schemas.yamlconf import load_yaml_file
from streams.settings import Settings


def _fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace) -> Policy:
    """The policy, checked against the approver groups (``--approvers``, BURNGUARD_APPROVERS or the shipped)."""
    approvers = Approvers.load(args.approvers or Settings().approvers)
    return load_policy(args.file, groups=approvers.names())


def run_check(args: argparse.Namespace) -> int:
    try:
        policy = _load(args)
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 1
    print(f"{policy.source}: ok, {len(policy.rules)} rules, version {policy.version}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    try:
        policy = _load(args)
        cases = load_yaml_file(args.cases, CasesFile)
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 2
    out, failed = Console(highlight=False), 0
    for case in cases.cases:
        ex = evaluate(policy, case.overrun.to_overrun(), case.context())
        e, got = case.expect, {"rule": ex.rule.name, "action": ex.rule.action.name, "decision": ex.effect.action,
                               "amount_usd": ex.effect.amount_usd, "group": ex.effect.group}
        wrong = [f"{k}: expected {v!r}, got {got[k]!r}" for k, v in e.model_dump(exclude_none=True).items()
                 if (round(got[k] or 0, 2) != round(v, 2) if k == "amount_usd" else got[k] != v)]
        if wrong:
            failed += 1
            out.print(f"[red]FAIL[/red] {safe_terminal(case.name)}: " + safe_terminal("; ".join(wrong)))
        else:
            out.print(f"[green]pass[/green] {safe_terminal(case.name)}: {safe_terminal(ex.rule.name)} -> "
                      f"{safe_terminal(ex.rule.action.name)}")
    print(f"{len(cases.cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _overrun_arg(raw: str) -> OverrunCase:
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"{raw[1:]}: cannot read: {err.strerror or err}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"--overrun is not JSON: {err}") from None
    try:
        return OverrunCase.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"--overrun: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def run_explain(args: argparse.Namespace) -> int:
    try:
        policy = _load(args)
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 2
    try:
        case = _overrun_arg(args.overrun)
    except ValueError as err:
        return _fail(str(err))
    ov = case.to_overrun()
    from guardrails.policy import DecisionContext

    ex = evaluate(policy, ov, DecisionContext(now=ov.at, granted_usd=args.granted_usd))
    if args.json:
        print(json.dumps(ex.as_dict(), indent=2))
        return 0
    out = Console(highlight=False)
    out.print(f"overrun {safe_terminal(ov.overrun_id)} on budget {safe_terminal(ov.budget_id)}: "
              f"{ov.overrun_usd:g} USD over ({ov.overrun_pct:.1f} %), policy {policy.version}")
    out.print(safe_terminal(ex.text(), keep_newlines=True))
    e = ex.effect
    amount = f" {e.amount_usd:g} USD" if e.amount_usd is not None else ""
    out.print(f"decision: {e.action}{amount}" + (f" ({safe_terminal(e.reason)})" if e.reason else ""))
    return 0


def run_docs(args: argparse.Namespace) -> int:
    text = render()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="check, test and explain guardrail policies")
    nested = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")

    def with_file(name: str, help_: str) -> argparse.ArgumentParser:
        q = nested.add_parser(name, help=help_)
        q.add_argument("file", metavar="FILE", help="policy YAML")
        q.add_argument("--approvers", default=None, help="approver groups YAML (default: BURNGUARD_APPROVERS or shipped)")
        return q

    with_file("check", "validate a policy file").set_defaults(func=run_check)
    t = with_file("test", "run test cases against a policy")
    t.add_argument("--cases", required=True, metavar="CASES.yaml")
    t.set_defaults(func=run_test)
    e = with_file("explain", "which rule decides an overrun, and why the earlier ones did not")
    e.add_argument("--overrun", required=True, metavar="JSON|@file", help="an overrun (fields not given take defaults)")
    e.add_argument("--granted-usd", type=float, default=0.0, help="grants already active on the budget")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=run_explain)
    d = nested.add_parser("docs", help="print (or --out write) the policy reference from the registries")
    d.add_argument("--out", default=None)
    d.set_defaults(func=run_docs)
