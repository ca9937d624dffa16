"""Allocation rules: tag keys, ordered rules, defaults, the shipped file, and load errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import orjson
import pytest

from schemas.allocation import AllocationRules, ConfigError
from schemas.ingest import Normalizer

RULES = """\
version: 2
tag_keys:
  team: [team, squad]
  customer: [customer, tenant]
rules:
  - name: namespaces
    match: {key: namespace, regex: "^(?P<team>[a-z]+)-(?P<env>prod|dev)$"}
    set: {team: "{team}", environment: "{env}"}
  - match: {key: api_key, prefix: "sk-billing-"}
    set: {feature: invoices}
  - match: {key: api_key, prefix: "sk-"}
    set: {feature: other, team: platform}
  - match: {key: environment, equals: dev}
    set: {tier: sandbox}
  - match: {key: label, in: [gold, platinum]}
    set: {tier: "premium-{value}"}
    override: true
defaults:
  environment: prod
  tier: standard
"""


@pytest.fixture()
def rules(tmp_path: Path) -> AllocationRules:
    p = tmp_path / "alloc.yaml"
    p.write_text(RULES)
    return AllocationRules.load(p)


def test_explicit_tags_win_over_rules(rules: AllocationRules) -> None:
    a = rules.allocate({"squad": "payments", "namespace": "search-dev", "tenant": "t-1"})
    assert (a.team, a.customer) == ("payments", "t-1")
    assert a.environment == "dev" and a.tier == "sandbox"  # rules still fill the unset dimensions


def test_regex_groups_fill_dimensions(rules: AllocationRules) -> None:
    a = rules.allocate({"namespace": "vision-prod"})
    assert (a.team, a.environment, a.tier) == ("vision", "prod", "standard")


def test_first_matching_rule_wins_per_dimension(rules: AllocationRules) -> None:
    a = rules.allocate({"api_key": "sk-billing-123"})
    assert a.feature == "invoices"  # the later "sk-" rule does not overwrite it ...
    assert a.team == "platform"  # ... but still fills what is unset


def test_override_rule_replaces_and_value_placeholder(rules: AllocationRules) -> None:
    a = rules.allocate({"tier": "free", "label": "gold"})
    assert a.tier == "premium-gold"


def test_defaults_and_unallocated(rules: AllocationRules) -> None:
    a = rules.allocate({"unrelated": "x"})
    assert (a.team, a.feature, a.customer, a.model, a.environment, a.tier) == (
        "unallocated", "unknown", "unknown", "unknown", "prod", "standard")


def test_placeholder_values_are_not_treated_as_set(rules: AllocationRules) -> None:
    a = rules.allocate({"team": "unknown", "squad": " ", "namespace": "ml-prod"})
    assert a.team == "ml"


def test_event_model_beats_model_tag(rules: AllocationRules) -> None:
    assert rules.allocate({"model": "tagged"}, model="gpt-4o").model == "gpt-4o"
    assert rules.allocate({"model": "tagged"}).model == "tagged"


def test_non_scalar_tags_are_ignored(rules: AllocationRules) -> None:
    a = rules.allocate({"team": {"name": "x"}, "squad": ["a"], "namespace": "ops-prod"})
    assert a.team == "ops"


def test_cache_does_not_mix_up_events(rules: AllocationRules) -> None:
    for ns, team in [("a-prod", "a"), ("b-prod", "b"), ("a-prod", "a"), ("b-dev", "b")]:
        assert rules.allocate({"namespace": ns}).team == team
    assert rules.allocate({"namespace": "a-prod"}, model="m1").model == "m1"
    assert rules.allocate({"namespace": "a-prod"}, model="m2").model == "m2"


def test_long_values_are_truncated(rules: AllocationRules) -> None:
    assert len(rules.allocate({"team": "x" * 500}).team) == 128


def test_shipped_rules() -> None:
    rules = AllocationRules.load()
    a = rules.allocate({"namespace": "team-fraud", "key.alias": "feature-scoring--prod", "end_user": "cust-1"})
    assert (a.team, a.feature, a.customer, a.tier) == ("fraud", "scoring", "cust-1", "production")
    b = rules.allocate({"namespace": "jupyter-bob", "environment": "dev"})
    assert (b.team, b.tier, b.environment) == ("research", "sandbox", "dev")


@pytest.mark.parametrize("alias, feature", [
    ("feature-chat", "chat"), ("feature-chat--prod-1", "chat"), ("feature-ticket-triage", "ticket-triage"),
    ("svc-search-prod", "unknown"), ("assistant-prod-key", "unknown"), ("search-batch", "unknown"),
    ("featurechat", "unknown"), ("feature-", "unknown")])
def test_shipped_rules_take_a_feature_only_from_a_declared_key_alias_pattern(alias: str, feature: str) -> None:
    assert AllocationRules.load().allocate({"key.alias": alias}).feature == feature


def test_shipped_rules_the_keys_team_beats_a_request_team_tag() -> None:
    rules = AllocationRules.load()
    assert rules.allocate({"team": "ads", "key.team_alias": "search", "key.team_id": "t-1"}).team == "search"
    assert rules.allocate({"team": "ads", "key.team_id": "t-1"}).team == "t-1"
    assert rules.allocate({"team": "ads"}).team == "ads"  # no key team: the tag decides
    assert AllocationRules.load().tag_keys["team"][:2] == ["key.team_alias", "key.team_id"]


def test_rules_through_the_normalizer(rules: AllocationRules) -> None:
    event = {"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o", "tags": {"namespace": "search-dev"}}
    records, _ = Normalizer(rules=rules).parse("llm", orjson.dumps(event))
    r = records[0]
    assert (r.team, r.environment, r.tier, r.allocation_key) == (
        "search", "dev", "sandbox", "team=search|feature=unknown|customer=unknown|model=gpt-4o|environment=dev")


@pytest.mark.parametrize("text, line, needle", [
    ("""\
     rules:
       - match: {key: ns, regex: "("}
         set: {team: x}
     """, 2, "rules.0.match: Value error, invalid regex"),
    ("""\
     rules:
       - match: {key: ns, equals: a, prefix: b}
         set: {team: x}
     """, 2, "rules.0.match: Value error, give exactly one of equals, prefix, regex, in"),
    ("""\
     rules:
       - match: {key: ns, equals: a}
         set: {team: x}
       - match: {key: ns, regex: "^(?P<t>.*)$"}
         set: {team: "{team}"}
     """, 4, "rules.1: Value error, set.team: unknown placeholder(s) ['team']"),
    ("""\
     rules:
       - match: {key: ns, equals: a}
         set:
           squad: x
     """, 4, "rules.0.set.squad.[key]: Input should be 'team', 'feature'"),
    ("""\
     tag_keys:
       team: team
     """, 2, "tag_keys.team: Input should be a valid list"),
    ("""\
     rules:
       - match: {key: ns, equals: a}
         sett: {team: x}
     """, 2, "rules.0.set: Field required"),
])
def test_bad_rules_name_file_line_and_field(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = tmp_path / "alloc.yaml"
    p.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as err:
        AllocationRules.load(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert needle in msg, msg
