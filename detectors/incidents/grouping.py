"""Which alerts belong together, and which of them names the incident (pure).

Allocation keys look like ``team=a|feature=f|customer=c|model=m|environment=e``; a roll-up
has ``*`` in the fields it sums over. An alert's *group* is its key's values at the grouping
level (default ``team`` + ``feature``). A roll-up alert names its top contributor (a child
such as ``feature=f|customer=c|model=m``), so its group is filled in from that child: the
team roll-up of a spike on ``ads/copygen`` groups with ``ads/copygen``. Two groups are
*compatible* when every field is equal or ``*`` on one side (one is an ancestor of the other).

>>> key = "team=ads|feature=copygen|customer=acme|model=gpt-4o|environment=production"
>>> group_of(key, [], ("team", "feature"))
{'team': 'ads', 'feature': 'copygen'}
>>> team = "team=ads|feature=*|customer=*|model=*|environment=production"
>>> group_of(team, ["feature=copygen|customer=acme|model=gpt-4o"], ("team", "feature"))
{'team': 'ads', 'feature': 'copygen'}
>>> group_of(team, [], ("team", "feature"))
{'team': 'ads', 'feature': '*'}
>>> compatible({"team": "ads", "feature": "*"}, {"team": "ads", "feature": "copygen"})
True
>>> compatible({"team": "ads", "feature": "a"}, {"team": "ads", "feature": "b"})
False

Keys outside the allocation format (``budget=org``) are a group of their own:

>>> group_of("budget=org", [], ("team", "feature"))
{'key': 'budget=org'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

ANY = "*"
KEY_FIELDS: tuple[str, ...] = ("team", "feature", "customer", "model", "environment")
#: Subject metric preference: a metric that says *why* spend rose beats the rise itself.
CAUSE_ORDER: tuple[str, ...] = ("tokens_per_request", "cost_per_1k_tokens", "cost_per_inference", "idle_gpu_cost",
                                "unpriced_share", "unallocated_share", "spend")


def parse_key(key: str) -> dict[str, str] | None:
    """Field -> value of an allocation key (values stay escaped); ``None`` for other keys.

    >>> parse_key("team=a|feature=*|customer=*|model=*|environment=*")["feature"]
    '*'
    >>> parse_key("budget=org") is None
    True
    """
    try:
        parts = dict(p.split("=", 1) for p in key.split("|"))
    except ValueError:
        return None
    return parts if all(f in parts for f in KEY_FIELDS) else None


def join_key(parts: Mapping[str, str]) -> str:
    return "|".join(f"{f}={parts.get(f, ANY)}" for f in KEY_FIELDS)


def with_child(key: str, child: str) -> str:
    """The full key of a roll-up's child (the child names the fields the roll-up summed over).

    >>> with_child("team=a|feature=*|customer=*|model=*|environment=prod", "feature=f|customer=c|model=m")
    'team=a|feature=f|customer=c|model=m|environment=prod'
    """
    parts = parse_key(key)
    if parts is None:
        return key
    for piece in child.split("|"):
        if "=" in piece:
            f, v = piece.split("=", 1)
            if f in parts and parts[f] == ANY:
                parts[f] = v
    return join_key(parts)


def specificity(key: str) -> int:
    """How many fields a key pins down (5 for a full allocation key, 0 for the org roll-up)."""
    parts = parse_key(key)
    return len(KEY_FIELDS) if parts is None else sum(v != ANY for v in parts.values())


def group_of(key: str, contributors: Sequence[str], group_by: Sequence[str]) -> dict[str, str]:
    """The alert's group at ``group_by``; a roll-up is filled in from its top contributor."""
    parts = parse_key(key)
    if parts is None:
        return {"key": key}
    if contributors and any(parts[f] == ANY for f in group_by):
        parts = parse_key(with_child(key, contributors[0])) or parts
    return {f: parts.get(f, ANY) for f in group_by}


def compatible(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Same fields, and each value equal or ``*`` on one side."""
    if a.keys() != b.keys():
        return False
    return all(x == y or x == ANY or y == ANY for x, y in ((a[k], b[k]) for k in a))


def narrow(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, str]:
    """The more specific of two compatible groups, field by field.

    >>> narrow({"team": "a", "feature": "*"}, {"team": "a", "feature": "f"})
    {'team': 'a', 'feature': 'f'}
    """
    return {k: (b[k] if a[k] == ANY else a[k]) for k in a}


def key_impacts(alerts: Iterable[tuple[str, str, float, float, Sequence[tuple[str, float]]]]) -> dict[str, float]:
    """Excess $ per bucket for every key the alerts tell about: a ``spend`` alert's own excess
    (observed - baseline), and each roll-up contributor's (its full key). Largest per key.

    Each item is (key, metric, observed, baseline, contributors).

    >>> team = "team=a|feature=*|customer=*|model=*|environment=p"
    >>> sorted(key_impacts([(team, "spend", 12.0, 2.0, [("feature=f|customer=c|model=m", 9.0)])]).items())
    [('team=a|feature=*|customer=*|model=*|environment=p', 10.0), ('team=a|feature=f|customer=c|model=m|environment=p', 9.0)]
    """
    out: dict[str, float] = {}
    for key, metric, observed, baseline, contributors in alerts:
        if metric == "spend":
            out[key] = max(out.get(key, 0.0), observed - baseline)
        for child, impact in contributors:
            full = with_child(key, child)
            out[full] = max(out.get(full, 0.0), impact)
    return out


def choose_subject(impacts: Mapping[str, float], alerting: Mapping[str, float], share: float = 0.5) -> str:
    """The most specific key explaining at least ``share`` of the largest $ impact.

    ``impacts``: key -> excess $ per bucket; ``alerting``: alerting key -> peak score (the
    fallback when no $ impact is known, and the tie-break).

    >>> org = "team=*|feature=*|customer=*|model=*|environment=p"
    >>> key = "team=a|feature=f|customer=c|model=m|environment=p"
    >>> small = "team=a|feature=f|customer=d|model=m|environment=p"
    >>> choose_subject({org: 10.0, key: 8.0, small: 1.0}, {org: 0.9999})
    'team=a|feature=f|customer=c|model=m|environment=p'
    >>> choose_subject({}, {org: 0.9999, key: 0.99999})
    'team=a|feature=f|customer=c|model=m|environment=p'
    """
    top = max((v for v in impacts.values()), default=0.0)
    if top > 0:
        cands = [k for k, v in impacts.items() if v >= share * top]
        return max(cands, key=lambda k: (specificity(k), impacts[k], alerting.get(k, 0.0), k))
    return max(alerting, key=lambda k: (specificity(k), alerting[k], k))


def subject_metric(metrics: Iterable[str]) -> str:
    """The metric that best explains the cause (see :data:`CAUSE_ORDER`); unknown metrics last.

    >>> subject_metric(["spend", "cost_per_inference", "tokens_per_request"])
    'tokens_per_request'
    """
    ms = list(metrics)
    rank = {m: i for i, m in enumerate(CAUSE_ORDER)}
    return min(ms, key=lambda m: (rank.get(m, len(CAUSE_ORDER) - 0.5), m))
