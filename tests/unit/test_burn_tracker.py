"""BurnTracker: hand-computed burn-rate incidents, thresholds, periods, projection, encoded state.

Reference budget for most cases: $3000 for November 2026 (30 days), so the even rate is
$3000 / 43200 min = $0.069444/min, i.e. $4.1667/h. The default rules then need:
fast (14.4x): >= $60 in 1 h and >= $5 in 5 min; slow (6x): >= $150 in 6 h and >= $12.5 in 30 min.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.burn_rate import DEFAULT_RULES, BurnRule, window_sums
from guardrails.budget_book import BudgetSpec
from guardrails.burn_event import BurnEvent, threshold_name
from guardrails.burn_tracker import BurnTracker
from streams.state.codec import decode, encode

UTC = timezone.utc
MONTHLY = BudgetSpec("team-search", 3000.0, "month", DEFAULT_RULES, (0.8, 1.0), (("team", ("search",)),))
HOURLY_EVEN = 3000.0 / (30 * 24)  # $/h at burn rate 1.0
T6 = datetime(2026, 11, 10, 6, tzinfo=UTC)
NOON = datetime(2026, 11, 10, 12, tzinfo=UTC)


def minutes(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(n)]


def feed(tr: BurnTracker, rows: Iterable[tuple[datetime, float]]) -> list[BurnEvent]:
    out: list[BurnEvent] = []
    for t, spend in rows:
        out += tr.observe(t, spend)
    return out


def burn_events(events: list[BurnEvent]) -> list[tuple[str, str, str]]:
    return [(e.rule, e.status, e.at.strftime("%H:%M")) for e in events if e.kind == "burn_rate"]


def surge_rows(per_minute: float = 2.1) -> list[tuple[datetime, float]]:
    """$0.05/min from 06:00, a $2.1/min surge 12:00-12:59, $0.05/min again until 14:00."""
    rows = [(t, 0.05) for t in minutes(T6, 360)]
    rows += [(t, per_minute) for t in minutes(NOON, 60)]
    rows += [(t, 0.05) for t in minutes(NOON + timedelta(hours=1), 60)]
    return rows


# ---------------------------------------------------------------- burn-rate incidents

def test_fast_rule_fires_once_at_the_right_minute_and_resolves_after_the_surge() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    events = feed(tr, surge_rows())
    # 1 h sum after t surge minutes = 2.1 t + 0.05 (60 - t) >= 60  <=>  t >= 27.8: the 28th bucket, ending 12:28.
    # 5 min sum j minutes after the surge = 0.05 j + 2.1 (5 - j) < 5  <=>  j >= 3: 13:03.
    # slow never: the 6 h sum peaks at 0.05 * 300 + 2.1 * 60 = 141 < 150.
    assert burn_events(events) == [("fast", "firing", "12:28"), ("fast", "resolved", "13:03")]
    firing, resolved = [e for e in events if e.kind == "burn_rate"]
    assert firing.long_rate == pytest.approx((2.1 * 28 + 0.05 * 32) / HOURLY_EVEN)
    assert firing.short_rate == pytest.approx(2.1 * 5 / (HOURLY_EVEN / 12))
    assert firing.period_spent_usd == pytest.approx(0.05 * 360 + 2.1 * 28)
    assert (firing.severity, firing.cap_usd, firing.budget_id) == ("page", 3000.0, "team-search")
    assert firing.period_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert firing.period_end == datetime(2026, 12, 1, tzinfo=UTC)
    # the resolved event names the incident it closes
    assert resolved.started_at == firing.started_at == firing.at
    assert resolved.short_rate == pytest.approx((0.05 * 3 + 2.1 * 2) / (HOURLY_EVEN / 12))
    assert resolved.short_rate < 14.4 <= resolved.long_rate
    assert tr.active == {}


def test_slow_steady_overspend_triggers_the_slow_rule_only() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    start = datetime(2026, 11, 10, tzinfo=UTC)
    events = feed(tr, ((t, 0.55) for t in minutes(start, 12 * 60)))  # 7.92x for 12 hours
    # 1 h = $33 < $60: fast never. 6 h = 0.55 t >= 150 <=> t >= 272.7: bucket 273 ends 04:33.
    assert burn_events(events) == [("slow", "firing", "04:33")]
    assert list(tr.active) == ["slow"]
    # spend stops at 12:00: 30 min sum 0.55 (30 - j) < 12.5 <=> j >= 8
    assert tr.advance(NOON + timedelta(minutes=7)) == []
    assert burn_events(tr.advance(NOON + timedelta(minutes=8))) == [("slow", "resolved", "12:08")]
    assert tr.advance(NOON + timedelta(minutes=30)) == []  # nothing more to report


def test_contributions_of_several_keys_in_one_minute_add_up() -> None:
    one, three = BurnTracker.from_spec(MONTHLY), BurnTracker.from_spec(MONTHLY)
    rows = surge_rows()
    single = feed(one, rows)
    split = feed(three, ((t, part) for t, spend in rows for part in (spend / 2, spend / 4, spend / 4)))
    assert burn_events(split) == burn_events(single) == [("fast", "firing", "12:28"), ("fast", "resolved", "13:03")]
    tr = BurnTracker.from_spec(MONTHLY)
    for spend in (1.25, 1.25, 0.5):
        tr.observe(NOON, spend)
    assert tr.period_spent_usd == 3.0
    assert tr.window_sum(300) == 3.0 and tr.window_sum(21600) == 3.0
    assert tr.now == NOON + timedelta(minutes=1)


def test_an_incident_is_reported_once_not_per_bucket() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    events = feed(tr, ((t, 5.0) for t in minutes(NOON, 240)))  # 72x for 4 hours
    # fast: 1 h >= 60 at 12 minutes (5 min >= 5 at once); slow: 6 h >= 150 at 30 minutes
    assert burn_events(events) == [("fast", "firing", "12:12"), ("slow", "firing", "12:30")]


def test_out_of_order_buckets_within_the_window_give_the_same_sums() -> None:
    rows = surge_rows()
    in_order, shuffled = BurnTracker.from_spec(MONTHLY), BurnTracker.from_spec(MONTHLY)
    feed(in_order, rows)
    late = rows[-120:]
    random.Random(7).shuffle(late)  # the last 2 hours arrive in random order
    feed(shuffled, rows[:-120] + late)
    for w in (300, 1800, 3600, 21600):
        assert shuffled.window_sum(w) == pytest.approx(in_order.window_sum(w))
    assert shuffled.period_spent_usd == pytest.approx(in_order.period_spent_usd)


def test_a_bucket_older_than_the_longest_window_counts_only_for_period_to_date() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    tr.observe(datetime(2026, 11, 10, 20, tzinfo=UTC), 1.0)
    before = tr.window_sums()
    assert tr.observe(datetime(2026, 11, 10, 8, tzinfo=UTC), 40.0) == []  # 12 h old
    assert tr.window_sums() == before == {300: 1.0, 1800: 1.0, 3600: 1.0, 21600: 1.0}
    assert tr.period_spent_usd == 41.0
    tr.observe(datetime(2026, 11, 10, 19, 30, tzinfo=UTC), 2.0)  # 30 min old: in the 1 h and 6 h windows
    assert tr.window_sums() == {300: 1.0, 1800: 1.0, 3600: 3.0, 21600: 3.0}


def test_long_window_prorates_its_oldest_coarse_slot() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    feed(tr, ((t, 1.0) for t in minutes(T6, 7 * 60 + 2)))  # $1/min 06:00-13:01, now = 13:02
    # the 6 h window starts at 07:02, inside the 07:00-07:05 slot: 3 of its 5 minutes count
    assert tr.now == datetime(2026, 11, 10, 13, 2, tzinfo=UTC)
    assert tr.window_sum(21600) == pytest.approx(360.0)
    assert tr.window_sum(3600) == 60.0


BUCKET_ROWS = st.lists(st.tuples(st.integers(0, 600), st.integers(0, 400).map(lambda c: c / 4)),
                       min_size=1, max_size=200)


@given(BUCKET_ROWS)
@settings(max_examples=150, deadline=None)
def test_ring_sums_match_brute_force_window_sums(rows: list[tuple[int, float]]) -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    buckets = [(NOON + timedelta(minutes=m), s) for m, s in rows]
    feed(tr, buckets)
    now = tr.now
    assert now == max(t for t, _ in buckets) + timedelta(minutes=1)
    exact = window_sums(buckets, now, [300, 1800, 3600, 21600])
    for w in (300, 1800, 3600):
        assert tr.window_sum(w) == exact[w]  # quarter-dollar spends: exact in floating point
    aligned = now.minute % 5 == 0
    if aligned:
        assert tr.window_sum(21600) == pytest.approx(exact[21600])
    else:  # the oldest 5-minute slot is pro-rated: off by less than one slot's spend
        assert abs(tr.window_sum(21600) - exact[21600]) <= 4 * 100.0
    assert tr.period_spent_usd == sum(s for _, s in buckets)


# ---------------------------------------------------------------- periods and thresholds

DAILY = BudgetSpec("lab", 100.0, "day", DEFAULT_RULES, (0.5, 0.8, 1.0), ())


def thresholds(events: list[BurnEvent]) -> list[tuple[str, str]]:
    return [(e.rule, e.at.strftime("%d %H:%M")) for e in events if e.kind == "threshold"]


def test_period_rollover_resets_period_to_date() -> None:
    tr = BurnTracker.from_spec(DAILY)
    tr.observe(datetime(2026, 11, 10, 23, 58, tzinfo=UTC), 10.0)
    tr.observe(datetime(2026, 11, 10, 23, 59, tzinfo=UTC), 10.0)
    assert tr.period_spent_usd == 20.0 and tr.period_start == datetime(2026, 11, 10, tzinfo=UTC)
    tr.observe(datetime(2026, 11, 11, 0, 0, tzinfo=UTC), 5.0)
    assert tr.period_spent_usd == 5.0
    assert (tr.period_start, tr.period_end) == (datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))
    # a late bucket of the closed day still counts in the trailing windows, not in the new day
    tr.observe(datetime(2026, 11, 10, 23, 57, tzinfo=UTC), 7.0)
    assert tr.period_spent_usd == 5.0
    assert tr.window_sum(300) == 32.0


def test_weekly_period_starts_monday() -> None:
    spec = BudgetSpec("w", 700.0, "week", DEFAULT_RULES, (1.0,), ())
    tr = BurnTracker.from_spec(spec)
    tr.observe(datetime(2026, 11, 29, 23, 59, tzinfo=UTC), 3.0)  # Sunday
    tr.observe(datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 4.0)  # Monday: new week
    assert tr.period_spent_usd == 4.0 and tr.period_start == datetime(2026, 11, 30, tzinfo=UTC)


def test_threshold_events_fire_once_per_threshold_per_period() -> None:
    tr = BurnTracker.from_spec(DAILY)
    day1 = datetime(2026, 11, 10, 9, tzinfo=UTC)
    events = feed(tr, [(day1, 30.0), (day1 + timedelta(minutes=1), 25.0),  # 55: crosses 50
                       (day1 + timedelta(minutes=2), 10.0),                  # 65: nothing new
                       (day1 + timedelta(minutes=3), 40.0),                  # 105: crosses 80 and 100
                       (day1 + timedelta(minutes=4), 40.0)])                 # 145: all fired already
    assert thresholds(events) == [("threshold_50", "10 09:02"), ("threshold_80", "10 09:04"),
                                  ("threshold_100", "10 09:04")]
    t80, t100 = [e for e in events if e.rule in ("threshold_80", "threshold_100")]
    assert (t80.threshold, t80.severity, t80.status) == (0.8, "ticket", "firing")
    assert (t100.threshold, t100.severity, t100.period_spent_usd) == (1.0, "page", 105.0)
    assert t100.projected_exhaustion == t100.at  # already spent
    day2 = datetime(2026, 11, 11, 9, tzinfo=UTC)
    events = feed(tr, [(day2, 85.0), (day2 + timedelta(minutes=1), 1.0)])
    assert thresholds(events) == [("threshold_50", "11 09:01"), ("threshold_80", "11 09:01")]
    assert all(e.period_start == datetime(2026, 11, 11, tzinfo=UTC) for e in events)


def test_threshold_names() -> None:
    assert [threshold_name(t) for t in (0.5, 0.8, 1.0, 1.5, 0.333)] == \
        ["threshold_50", "threshold_80", "threshold_100", "threshold_150", "threshold_33.3"]


# ---------------------------------------------------------------- projection

def test_projection_carries_the_6h_rate_to_the_end_of_the_period() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    feed(tr, ((t, 0.5) for t in minutes(datetime(2026, 11, 10, tzinfo=UTC), 720)))
    # spent 360 by Nov 10 12:00; 20.5 days = 29520 min remain at $0.5/min
    projected, exhaustion = tr.projection()
    assert projected == pytest.approx(360 + 0.5 * 29520)
    # (3000 - 360) / 0.5 = 5280 min = 3 days 16 h
    assert exhaustion == datetime(2026, 11, 14, 4, tzinfo=UTC)


def test_projection_of_a_young_tracker_uses_the_time_seen_and_none_when_under_cap() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    feed(tr, ((t, 0.02) for t in minutes(NOON, 120)))  # 2 h seen: rate 2.4/120 min, not /360
    projected, exhaustion = tr.projection()
    remaining_min = (datetime(2026, 12, 1, tzinfo=UTC) - (NOON + timedelta(hours=2))).total_seconds() / 60
    assert projected == pytest.approx(2.4 + 0.02 * remaining_min)
    assert projected < 3000 and exhaustion is None
    young = BurnTracker.from_spec(MONTHLY)
    feed(young, ((t, 0.02) for t in minutes(NOON, 10)))  # under 1 h seen: averaged over 1 h
    assert young.projection()[0] == pytest.approx(0.2 + 0.2 / 60 * (remaining_min + 110))


def test_optional_statsmodels_forecast() -> None:
    steady = BurnTracker.from_spec(MONTHLY)
    feed(steady, ((t, 0.5) for t in minutes(datetime(2026, 11, 10, tzinfo=UTC), 720)))
    f, exhaustion = steady.forecast()  # flat history: mean rate, same numbers as the projection above
    assert (f.method, exhaustion) == ("mean_rate", datetime(2026, 11, 14, 4, tzinfo=UTC))
    assert f.expected_total == pytest.approx(360 + 0.5 * 29520)
    rising = BurnTracker.from_spec(MONTHLY)
    feed(rising, ((t, 0.5 + i / 720) for i, t in enumerate(minutes(datetime(2026, 11, 10, tzinfo=UTC), 720))))
    f, _ = rising.forecast()
    assert f.method == "holt" and f.expected_total > rising.projection()[0]  # follows the trend


# ---------------------------------------------------------------- state

def test_state_round_trip_keeps_identical_future_behaviour() -> None:
    rows = surge_rows()
    cut = 360 + 20  # mid-surge, before the fast rule fires
    a = BurnTracker.from_spec(MONTHLY)
    feed(a, rows[:cut])
    b = decode(encode(a))
    assert b == a and b is not a
    assert feed(b, rows[cut:]) == feed(a, rows[cut:])
    assert b == a
    c = decode(encode(a))  # with an open incident and fired state
    more = [(t, 3.0) for t in minutes(datetime(2026, 11, 10, 14, tzinfo=UTC), 90)]
    ev_a, ev_c = feed(a, more), feed(c, more)
    # from 14:00, j minutes of $3: 6 h = 141 + 2.95 j >= 150 and 30 min = 1.5 + 2.95 j >= 12.5 -> j = 4;
    # 1 h = 3 + 2.95 j >= 60 -> j = 20
    assert ev_c == ev_a
    assert burn_events(ev_a) == [("slow", "firing", "14:04"), ("fast", "firing", "14:20")]


@pytest.mark.parametrize("rules", [DEFAULT_RULES, DEFAULT_RULES + (BurnRule("drift", 86400, 7200, 3.0, "ticket"),)],
                         ids=["default", "with-24h-rule"])
def test_encoded_state_stays_under_4kb_after_a_week_of_minute_buckets(rules: tuple[BurnRule, ...]) -> None:
    spec = BudgetSpec("b", 10_000.0, "month", rules, (0.5, 0.8, 1.0), ())
    tr = BurnTracker.from_spec(spec)
    rng = random.Random(1)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    sizes = []
    for day in range(7):
        feed(tr, ((t, rng.uniform(0.0, 3.0)) for t in minutes(start + timedelta(days=day), 1440)))
        sizes.append(len(encode(tr)))
    assert max(sizes) <= 4096, sizes
    assert max(sizes) - min(sizes) < 200, sizes  # does not grow with time


def test_configure_applies_a_cap_grant_keeping_the_sums() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    feed(tr, surge_rows()[:360 + 40])
    assert list(tr.active) == ["fast"]
    sums = tr.window_sums()
    granted = BudgetSpec(**{**{f: getattr(MONTHLY, f) for f in MONTHLY.__slots__}, "cap_usd": 30_000.0})
    tr.configure(granted)
    assert tr.window_sums() == sums and tr.cap_usd == 30_000.0
    events = tr.observe(NOON + timedelta(minutes=40), 2.1)
    assert burn_events(events) == [("fast", "resolved", "12:41")]  # 10x the cap: no longer burning


def test_configure_same_spec_is_a_no_op_and_a_new_period_restarts_period_to_date() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    feed(tr, ((t, 1.0) for t in minutes(NOON, 30)))
    before = encode(tr)
    tr.configure(MONTHLY)
    assert encode(tr) == before
    daily = BudgetSpec(**{**{f: getattr(MONTHLY, f) for f in MONTHLY.__slots__}, "period": "day"})
    tr.configure(daily)
    assert (tr.period_start, tr.period_spent_usd) == (datetime(2026, 11, 10, tzinfo=UTC), 0.0)
    assert tr.window_sum(3600) == 30.0
    tr.observe(NOON + timedelta(minutes=30), 2.0)
    assert tr.period_spent_usd == 2.0


def test_advance_without_data_and_backwards_is_a_no_op() -> None:
    tr = BurnTracker.from_spec(MONTHLY)
    assert tr.advance(NOON) == [] and tr.now is None
    tr.observe(NOON, 1.0)
    assert tr.advance(NOON) == [] and tr.now == NOON + timedelta(minutes=1)
