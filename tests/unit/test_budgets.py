"""Budget book: YAML format, validation errors with file:line: field, matching across levels and tiers."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from guardrails.burn_rate import DEFAULT_RULES, BurnRule
from guardrails.budget_book import (DEFAULT_BUDGETS_PATH, BudgetBook, ConfigError, period_bounds)
from schemas.cost import AllocationKey

BOOK = """\
version: 1
defaults:
  owner: finops
tiers:
  sandbox: {period: day, cap_usd: 20, thresholds: [0.5, 1.0]}
  pilot: {period: week, cap_usd: 500}
  production: {period: month}
budgets:
  - id: org
    cap_usd: 100000
  - id: search
    parent: org
    tier: production
    scope: {team: search}
    cap_usd: 20000
    approvers: search-leads
  - id: search-answers
    parent: search
    tier: production
    scope: {team: search, feature: answers}
    cap_usd: 5000
    rules:
      - {name: quick, long_s: 1800, short_s: 120, factor: 20, severity: critical}
  - id: search-lab
    parent: search
    tier: sandbox
    scope: {team: search, tier: [sandbox, pilot]}
  - id: acme
    parent: org
    tier: pilot
    scope: {customer: acme, model: [gpt-4o, gpt-4o-mini]}
  - id: prod-only
    scope: {environment: production}
    cap_usd: 90000
"""


def write(tmp_path: Path, text: str, name: str = "budgets.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def book(tmp_path: Path) -> BudgetBook:
    return BudgetBook.load(write(tmp_path, BOOK))


def ids(specs: list) -> list[str]:
    return [s.id for s in specs]


# ---------------------------------------------------------------- resolution of tiers and defaults

def test_tier_and_defaults_fill_what_the_budget_leaves_out(book: BudgetBook) -> None:
    lab = book.get("search-lab")
    assert lab is not None
    assert (lab.period, lab.cap_usd, lab.thresholds, lab.owner) == ("day", 20.0, (0.5, 1.0), "finops")
    assert lab.rules == DEFAULT_RULES
    search = book.get("search")
    assert search is not None
    # budget's own cap beats nothing from the tier; tier gives the period; approvers as a single string
    assert (search.period, search.cap_usd, search.approvers, search.level) == ("month", 20000.0, ("search-leads",), 1)
    answers = book.get("search-answers")
    assert answers is not None
    assert answers.rules == (BurnRule("quick", 1800, 120, 20.0, "critical"),)
    assert answers.level == 2 and [a.id for a in book.ancestors("search-answers")] == ["search", "org"]
    acme = book.get("acme")
    assert acme is not None and (acme.period, acme.cap_usd) == ("week", 500.0)
    org = book.get("org")
    assert org is not None and (org.period, org.scope, org.parent) == ("month", (), None)
    assert ids(book.children("search")) == ["search-answers", "search-lab"]


# ---------------------------------------------------------------- matching across levels and tiers

def test_matching_returns_every_level(book: BudgetBook) -> None:
    key = AllocationKey(team="search", feature="answers", customer="acme", model="gpt-4o", environment="production")
    assert ids(book.matching(key)) == ["org", "search", "search-answers", "acme", "prod-only"]
    assert ids(book.matching(key, tier="pilot")) == ["org", "search", "search-answers", "search-lab", "acme",
                                                   "prod-only"]


def test_matching_on_dimension_lists_and_environment(book: BudgetBook) -> None:
    assert ids(book.matching({"team": "ads", "customer": "acme", "model": "gpt-4o-mini", "environment": "dev"})) \
        == ["org", "acme"]
    assert ids(book.matching({"team": "ads", "customer": "acme", "model": "claude", "environment": "dev"})) == ["org"]
    # missing mapping fields take the allocation defaults (environment=production)
    assert ids(book.matching({"team": "ads"})) == ["org", "prod-only"]


def test_tier_scoped_budget_needs_the_tier(book: BudgetBook) -> None:
    dev = {"team": "search", "feature": "x", "environment": "dev"}
    assert ids(book.matching(dev)) == ["org", "search"]
    assert ids(book.matching(dev, tier="sandbox")) == ["org", "search", "search-lab"]
    assert ids(book.matching({**dev, "tier": "sandbox"})) == ["org", "search", "search-lab"]
    assert ids(book.matching(dev, tier="production")) == ["org", "search"]


def test_matching_accepts_the_bucket_key_string_and_memoises(book: BudgetBook) -> None:
    key = AllocationKey(team="search", feature="answers", customer="c|1", environment="production")
    s = str(key)
    first = book.matching(s)
    assert ids(first) == ids(book.matching(key)) == ["org", "search", "search-answers", "prod-only"]
    first.clear()  # callers get a fresh list: mutating it does not poison the cache
    assert ids(book.matching(s)) == ["org", "search", "search-answers", "prod-only"]
    assert len(book._cache) == 1


def test_shipped_default_file_loads_and_matches() -> None:
    book = BudgetBook.load(None)
    assert book.source == str(DEFAULT_BUDGETS_PATH) and len(book) >= 5
    all_ids = [b.id for b in book]
    assert len(set(all_ids)) == len(all_ids)
    org = [b for b in book if not b.scope]
    assert org, "the example has an org-level budget"
    matched = book.matching({"team": "research", "environment": "dev"}, tier="sandbox")
    assert [b.level for b in matched] == sorted(b.level for b in matched)
    assert {b.tier for b in matched} >= {"sandbox"}


def test_period_bounds_are_calendar_utc() -> None:
    t = datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)  # a Thursday
    assert period_bounds("day", t) == (datetime(2026, 12, 31, tzinfo=timezone.utc),
                                       datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert period_bounds("week", t) == (datetime(2026, 12, 28, tzinfo=timezone.utc),
                                        datetime(2027, 1, 4, tzinfo=timezone.utc))
    assert period_bounds("month", t) == (datetime(2026, 12, 1, tzinfo=timezone.utc),
                                         datetime(2027, 1, 1, tzinfo=timezone.utc))
    feb = period_bounds("month", datetime(2028, 2, 10))  # naive = UTC, leap year
    assert (feb[1] - feb[0]).days == 29
    book = BudgetBook.from_yaml_text("budgets: [{id: a, cap_usd: 10, period: month}]")
    spec = book.get("a")
    assert spec is not None and spec.budget_at(datetime(2026, 2, 3)).period_s == 28 * 86400


# ---------------------------------------------------------------- bad files: right line and field

GOOD_HEAD = """\
tiers:
  sandbox: {period: day, cap_usd: 20}
  production: {}
budgets:
  - id: org
    cap_usd: 1000
"""

BAD = [
    ("unknown field", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    colour: red\n",
     9, "budgets.1.colour", "Extra inputs are not permitted"),
    ("duplicate id", GOOD_HEAD + "  - id: team\n    cap_usd: 5\n  - id: team\n    cap_usd: 6\n",
     9, "budgets.2.id", "duplicate budget id 'team'"),
    ("zero cap", GOOD_HEAD + "  - id: b\n    cap_usd: 0\n",
     8, "budgets.1.cap_usd", "greater than 0"),
    ("negative cap", GOOD_HEAD + "  - id: b\n    scope: {team: x}\n    cap_usd: -3\n",
     9, "budgets.1.cap_usd", "greater than 0"),
    ("unknown tier", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    tier: prod\n",
     9, "budgets.1.tier", "unknown tier 'prod'"),
    ("unknown scope tier", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    scope:\n      tier: [sandbox, lab]\n",
     10, "budgets.1.scope.tier", "unknown tier 'lab'"),
    ("child as wide as parent", GOOD_HEAD + "  - id: t\n    parent: org\n    cap_usd: 5\n",
     7, "budgets.1.scope", "narrower than its parent 'org' (scope: everything)"),
    ("child drops parent dimension",
     GOOD_HEAD + "  - id: t\n    scope: {team: a}\n    cap_usd: 5\n"
                 "  - id: f\n    parent: t\n    scope: {feature: x}\n    cap_usd: 1\n",
     12, "budgets.2.scope", "narrower than its parent 't' (scope: {team: ['a']})"),
    ("child widens parent values",
     GOOD_HEAD + "  - id: t\n    scope: {team: a}\n    cap_usd: 5\n"
                 "  - id: f\n    parent: t\n    scope: {team: [a, b], feature: x}\n    cap_usd: 1\n",
     12, "budgets.2.scope", "narrower than its parent 't' (scope: {team: ['a']})"),
    ("unknown parent", GOOD_HEAD + "  - id: t\n    parent: orgg\n    scope: {team: a}\n    cap_usd: 5\n",
     8, "budgets.1.parent", "unknown parent budget 'orgg'"),
    ("bad period", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    period: quarter\n",
     9, "budgets.1.period", "Input should be 'day', 'week' or 'month'"),
    ("rule short >= long", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    rules:\n"
                           "      - {name: r, long_s: 300, short_s: 300, factor: 2}\n",
     10, "budgets.1.rules.0.short_s", "short_s must be shorter than long_s"),
    ("rule window not minutes", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    rules:\n"
                                "      - {name: r, long_s: 3600, short_s: 90, factor: 2}\n",
     10, "budgets.1.rules.0.short_s", "short_s must be a multiple of 60"),
    ("no cap anywhere", GOOD_HEAD + "  - id: b\n    tier: production\n",
     7, "budgets.1.cap_usd", "no cap_usd"),
    ("unknown scope dimension", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    scope: {team: a, region: eu}\n",
     9, "budgets.1.scope.region", "Extra inputs are not permitted"),
    ("threshold out of range", GOOD_HEAD + "  - id: b\n    cap_usd: 5\n    thresholds: [0.8, 0]\n",
     9, "budgets.1.thresholds", "in (0, 10]"),
    ("bad yaml", GOOD_HEAD + "  - id: b\n    cap_usd: [5\n", 9, None, "invalid YAML"),
]


@pytest.mark.parametrize("text,line,field,problem", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str | None,
                                            problem: str) -> None:
    p = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ConfigError) as exc:
        BudgetBook.load(p)
    msg = str(exc.value)
    prefix = f"{p}:{line}: " + (f"{field}: " if field else "")
    assert msg.startswith(prefix), msg
    assert problem in msg, msg


def test_good_head_itself_is_valid(tmp_path: Path) -> None:
    """The bad cases above differ from a valid file only by what they add."""
    assert ids(BudgetBook.load(write(tmp_path, GOOD_HEAD))) == ["org"]


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        BudgetBook.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"empty\.yaml:1: file is empty"):
        BudgetBook.load(write(tmp_path, "", "empty.yaml"))
