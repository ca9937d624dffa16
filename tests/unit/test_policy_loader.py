"""Malformed policy files: each error names the file, the line and the field (hand-counted lines)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from guardrails.policy import ConfigError, Policy, load_policy
from guardrails.policy.actions import actions
from guardrails.policy.conditions import conditions
from guardrails.policy.docs import render

OK_DEFAULT = "  - name: default\n    default: true\n    then: {action: page}\n"

BAD = [
    ("unknown action",
     "rules:\n  - name: a\n    then: {action: approve}\n" + OK_DEFAULT,
     3, "rules.0.then.action", "unknown action 'approve'; known: auto_approve"),
    ("unknown rule field",
     "rules:\n  - name: a\n    wehn: {overrun_usd: 5}\n    then: {action: page}\n" + OK_DEFAULT,
     3, "rules.0.wehn", "Extra inputs are not permitted"),
    ("unknown condition",
     "rules:\n  - name: a\n    when:\n      overrun_dollars: {lt: 5}\n    then: {action: page}\n" + OK_DEFAULT,
     4, "rules.0.when.overrun_dollars", "unknown condition 'overrun_dollars'"),
    ("unknown action parameter",
     "rules:\n  - name: a\n    then:\n      action: auto_approve\n      grnt_usd: 5\n" + OK_DEFAULT,
     5, "rules.0.then.grnt_usd", "Extra inputs are not permitted"),
    ("unknown match field",
     "rules:\n  - name: a\n    match: {squad: x}\n    then: {action: page}\n" + OK_DEFAULT,
     3, "rules.0.match.squad", "Extra inputs are not permitted"),
    ("bad operator",
     "rules:\n  - name: a\n    when:\n      overrun_usd: {le: 5}\n    then: {action: page}\n" + OK_DEFAULT,
     4, "rules.0.when.overrun_usd", "unknown operator 'le'"),
    ("operator that does not apply",
     "rules:\n  - name: a\n    when:\n      trigger: {gt: threshold}\n    then: {action: page}\n" + OK_DEFAULT,
     4, "rules.0.when.trigger", "operator 'gt' does not apply here; use eq, in"),
    ("bad operand",
     "rules:\n  - name: a\n    when:\n      overrun_usd:\n        lte: lots\n    then: {action: page}\n" + OK_DEFAULT,
     5, "rules.0.when.overrun_usd.lte", "valid number"),
    ("missing default",
     "version: 1\nrules:\n  - name: a\n    then: {action: page}\n",
     2, "rules", "no default rule"),
    ("unreachable after an unconditional rule",
     "rules:\n  - name: catch-all\n    then: {action: page}\n  - name: later\n    match: {tier: x}\n"
     "    then: {action: page}\n" + OK_DEFAULT,
     4, "rules.1.name", "rule 'later' is unreachable: rule 'catch-all' (rules.0) above it matches every overrun"),
    ("rule after the default",
     "rules:\n" + OK_DEFAULT + "  - name: after\n    then: {action: page}\n",
     5, "rules.1.name", "unreachable: rule 'default'"),
    ("default with conditions",
     "rules:\n  - name: default\n    default: true\n    when: {overrun_usd: {lt: 5}}\n    then: {action: page}\n",
     3, "rules.0.default", "a default rule has no match or when"),
    ("default that can refuse",
     "rules:\n  - name: default\n    default: true\n    then: {action: auto_approve}\n",
     4, "rules.0.then.action", "the default rule must always decide"),
    ("bad duration",
     "rules:\n  - name: a\n    then: {action: escalate, to: g, deadline: soon}\n" + OK_DEFAULT,
     3, "rules.0.then.deadline", "'soon' is not a duration"),
    ("duplicate names",
     "rules:\n  - name: a\n    match: {tier: x}\n    then: {action: page}\n  - name: a\n    default: true\n"
     "    then: {action: page}\n",
     5, "rules.1.name", "duplicate rule name 'a'"),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_files_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str,
                                                  message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    hits = [e for e in err.value.errors if e.startswith(f"{path}:{line}: {field}: ")]
    assert hits, err.value.errors
    assert message in hits[0]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("rules:\n  - name: a\n    when: {overrun_usd: {le: 1}}\n    then: {action: nope}\n")
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert [e.split(": ")[0:2] for e in err.value.errors] == [
        [f"{path}:3", "rules.0.when.overrun_usd"], [f"{path}:4", "rules.0.then.action"], [f"{path}:1", "rules"]]
    assert str(err.value).endswith("(and 2 more)")


def test_unknown_approver_group_when_groups_are_known() -> None:
    text = "rules:\n  - name: d\n    default: true\n    then:\n      action: escalate\n      to: nobody\n      deadline: 1h\n"
    with pytest.raises(ConfigError, match=r"^p.yaml:6: rules.0.then.to: unknown approver group 'nobody'"):
        Policy.from_text(text, "p.yaml", groups=["finops"])
    assert Policy.from_text(text, "p.yaml").rules[0].name == "d"  # not checked without groups


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "none.yaml")
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_policy(tmp_path / "e.yaml")


def test_shipped_policy_loads_against_shipped_approvers() -> None:
    from guardrails.approvers import Approvers

    p = load_policy(groups=Approvers.load().names())
    assert p.rules[-1].default and len(p.rules) >= 5


def test_docstring_examples_are_valid_and_docs_are_current() -> None:
    """Every registered condition and action documents a YAML example that the loader accepts."""
    for reg, key in ((conditions, "when"), (actions, "then")):
        for name, cls in reg.items():
            m = re.search(r"```yaml\n(.*?)```", cls.__doc__ or "", re.S)
            assert m, f"{name} has no YAML example"
            example = textwrap.dedent(m.group(1)).strip()
            assert example.startswith(f"{key}:") and name in example
            rule = "    " + example.replace("\n", "\n    ")
            rest = "\n    then: {action: page}" if key == "when" else ""
            Policy.from_text(f"rules:\n  - name: ex\n    match: {{tier: x}}\n{rule}{rest}\n" + OK_DEFAULT)
    docs = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
    assert docs.read_text() == render(), "docs/policies.md is stale: burnguard policy docs --out docs/policies.md"
