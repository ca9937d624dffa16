"""Incident grouping on hand-worked alert timelines (the expected incidents are worked out by hand)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from detectors.incidents.dispatch import Dispatcher, GroupingConfig, run
from detectors.incidents.state import IncidentBook
from detectors.incidents.summary import to_record
from schemas.alert import Alert, Contributor

T0 = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
KEY = "team=ads|feature=copygen|customer=unknown|model=gpt-4o|environment=production"
TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"
ORG = "team=*|feature=*|customer=*|model=*|environment=production"


def alert(key: str, metric: str, start_min: float, raised_min: float, status: str = "firing",
          observed: float = 5.0, baseline: float = 1.0, contributors: list[tuple[str, float]] = ()) -> Alert:
    end = T0 + timedelta(minutes=raised_min)
    return Alert(series_key=key, metric=metric, detector="seasonal_z", score=0.99999, severity="critical",
                 observed=observed, baseline=baseline, expected_low=0.8 * baseline, expected_high=1.2 * baseline,
                 window_start=end - timedelta(minutes=1), window_end=end,
                 started_at=T0 + timedelta(minutes=start_min), status=status,
                 contributors=[Contributor(key=k, impact_usd=v, observed=v + 0.1, baseline=0.1)
                               for k, v in contributors])


def demo_alerts() -> list[Alert]:
    """What `make demo` raises for its one spike: 3 metrics on the key, its team and org roll-ups."""
    child_t = "feature=copygen|customer=unknown|model=gpt-4o"
    child_o = "team=ads|feature=copygen|customer=unknown|model=gpt-4o"
    out = []
    for key, contributors, extra in ((KEY, [], 0.0), (TEAM, [(child_t, 0.9)], 0.2), (ORG, [(child_o, 0.9)], 0.5)):
        out.append(alert(key, "spend", 0, 2, observed=1.0 + extra, baseline=0.1 + extra, contributors=contributors))
        out.append(alert(key, "cost_per_inference", 0, 1, observed=0.04, baseline=0.005, contributors=contributors))
        out.append(alert(key, "tokens_per_request", 0, 2 if key == ORG else 1, observed=8000, baseline=1000,
                         contributors=contributors))
    return out


def test_demo_spike_nine_alerts_are_one_incident_named_by_the_key() -> None:
    alerts = demo_alerts()
    resolved = [a.model_copy(update={"status": "resolved", "window_end": T0 + timedelta(minutes=25)})
                for a in alerts]
    incidents, notes = run(alerts + resolved)
    assert len(incidents) == 1
    inc = incidents[0]
    assert inc.alert_count == 9 and inc.status == "resolved"
    assert [n.kind for n in notes] == ["open", "resolve"]
    opened = notes[0]
    assert opened.at == T0 + timedelta(minutes=3)  # first alert raised at 14:01, group_wait 2 min
    assert len(opened.new_alerts) == 9  # every alert is in the first message: none trickles in later
    rec = to_record(opened.incident)
    assert rec.subject_key == KEY and rec.metric == "tokens_per_request"
    assert rec.title == "tokens per request 8.0x normal on ads / copygen / gpt-4o"
    # excess: the org roll-up's 1.5 - 0.6 = $0.90 a minute is the largest: $54/h
    assert rec.excess_usd_per_hour == 54.0


def test_roll_up_without_contributors_joins_the_open_incident_below_it() -> None:
    alerts = demo_alerts()
    alerts[-1] = alerts[-1].model_copy(update={"contributors": []})
    incidents, _ = run(alerts)
    assert len(incidents) == 1 and incidents[0].group == {"team": "ads", "feature": "copygen"}


def test_roll_up_first_then_key_narrows_the_group() -> None:
    team = alert(TEAM, "spend", 0, 1, contributors=[])
    key = alert(KEY, "spend", 0, 2)
    other = alert("team=ads|feature=search|customer=x|model=m|environment=production", "spend", 0, 3)
    incidents, _ = run([team, key, other])
    groups = sorted(json.dumps(i.group, sort_keys=True) for i in incidents)
    assert groups == ['{"feature": "copygen", "team": "ads"}', '{"feature": "search", "team": "ads"}']


def test_price_change_alerting_per_customer_is_one_incident() -> None:
    """28 customers of billing/invoice see cost per call x1.8, each when it next calls: first every 7 min
    (each alert resolving 30 min later), then after a quiet hour the last 8 — within repeat_interval."""
    alerts = []
    for i in range(28):
        start = 7 * i if i < 20 else 7 * 19 + 30 + 60 + 10 * (i - 20)  # the last 8 after everything resolved
        key = f"team=billing|feature=invoice|customer=c{i}|model=gpt-4o|environment=production"
        alerts.append(alert(key, "cost_per_inference", start, start + 2, observed=0.018, baseline=0.01))
        alerts.append(alert(key, "cost_per_inference", start, start + 30, status="resolved"))
    incidents, notes = run(alerts)
    assert len(incidents) == 1
    inc = incidents[0]
    assert inc.alert_count == 28 and inc.reopened == 1 and inc.status == "resolved"
    kinds = [n.kind for n in notes]
    assert kinds.count("open") == 1 and kinds.count("reopen") == 1 and kinds.count("resolve") == 2


def test_same_cause_after_repeat_interval_is_a_new_incident() -> None:
    key = "team=billing|feature=invoice|customer=c1|model=m|environment=production"
    a = [alert(key, "spend", 0, 2), alert(key, "spend", 0, 30, status="resolved"),
         alert(key, "spend", 30 + 5 * 60, 30 + 5 * 60 + 2)]
    incidents, _ = run(a)
    assert len(incidents) == 2


def test_two_unrelated_teams_at_once_are_two_incidents_and_the_org_roll_up_joins_its_cause() -> None:
    a_key = "team=ads|feature=copygen|customer=unknown|model=gpt-4o|environment=production"
    b_key = "team=research|feature=agents|customer=lab|model=claude|environment=production"
    alerts = [alert(a_key, "spend", 0, 1), alert(b_key, "tokens_per_request", 0, 1),
              alert(ORG, "spend", 0, 2, contributors=[("team=research|feature=agents|customer=lab|model=claude",
                                                        3.0)])]
    incidents, notes = run(alerts)
    assert len(incidents) == 2
    by_team = {i.group["team"]: i for i in incidents}
    assert by_team["ads"].alert_count == 1 and by_team["research"].alert_count == 2
    assert [n.kind for n in notes] == ["open", "open"]


def test_alerts_joining_an_announced_incident_are_batched_per_group_interval() -> None:
    k2 = "team=ads|feature=copygen|customer=acme|model=gpt-4o|environment=production"
    alerts = [alert(KEY, "spend", 0, 1), alert(k2, "spend", 4, 5), alert(k2, "tokens_per_request", 5, 6),
              alert(KEY, "cost_per_inference", 8, 9)]
    _, notes = run(alerts, flush=timedelta(minutes=10))
    # open at 14:03 (14:01 + group_wait); two alerts join at 14:05 and 14:06, announced together at 14:08
    # (14:03 + group_interval); the one at 14:09 waits for 14:13 (14:08 + group_interval)
    assert [(n.kind, n.at.minute, len(n.new_alerts)) for n in notes] == \
        [("open", 3, 1), ("update", 8, 2), ("update", 13, 1)]


def test_duplicate_alert_redelivered_changes_nothing() -> None:
    d = Dispatcher()
    a = alert(KEY, "spend", 0, 1)
    d.observe(a)
    before = json.dumps(d.book.to_dict(), sort_keys=True)
    assert d.observe(a) == []
    assert json.dumps(d.book.to_dict(), sort_keys=True) == before


def test_state_survives_a_restart_through_its_dict_encoding() -> None:
    alerts = demo_alerts()
    resolved = [a.model_copy(update={"status": "resolved", "window_end": T0 + timedelta(minutes=25)})
                for a in alerts]
    straight, notes_straight = run(alerts + resolved)
    d = Dispatcher()
    notes = []
    order = sorted(alerts, key=lambda a: (a.window_end, a.series_key, a.metric))  # as run() replays them
    for a in order:
        notes += d.observe(a)
    notes += d.advance(T0 + timedelta(minutes=3))
    d = Dispatcher(book=IncidentBook.from_dict(json.loads(json.dumps(d.book.to_dict()))))  # a restarted worker
    for a in resolved:
        notes += d.observe(a)
    assert [n.kind for n in notes] == [n.kind for n in notes_straight]
    assert notes[-1].incident.id == straight[0].id


def test_unacknowledged_incident_repeats_after_repeat_interval() -> None:
    config = GroupingConfig(repeat_interval=timedelta(hours=4))
    d = Dispatcher(config)
    d.observe(alert(KEY, "spend", 0, 1))
    notes = d.advance(T0 + timedelta(minutes=3))
    assert [n.kind for n in notes] == ["open"]
    assert d.advance(T0 + timedelta(hours=4)) == []  # 3h57 after the first message
    assert [n.kind for n in d.advance(T0 + timedelta(hours=4, minutes=3))] == ["repeat"]
    assert d.advance(T0 + timedelta(hours=5)) == []


def test_alerts_alone_move_event_time_as_the_stream_sees_them() -> None:
    """No ticks: the resolutions at 14:25 prove event time passed 14:03, so the incident is announced
    (with all 9 alerts) before they resolve it: one message, one resolution."""
    d = Dispatcher()
    notes = []
    for a in sorted(demo_alerts(), key=lambda a: a.window_end):
        notes += d.observe(a)
    assert notes == []
    for a in demo_alerts():
        notes += d.observe(a.model_copy(update={"status": "resolved", "window_end": T0 + timedelta(minutes=25)}))
    assert [(n.kind, n.at.minute, len(n.new_alerts)) for n in notes] == [("open", 24, 9), ("resolve", 25, 0)]
