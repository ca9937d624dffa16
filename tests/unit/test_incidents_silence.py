"""Acknowledge, snooze and manual resolve, as the dispatcher honours them (hand-worked timelines)."""

from __future__ import annotations

from datetime import timedelta

from detectors.incidents.dispatch import Dispatcher
from detectors.incidents.silence import Acknowledge, Resolve, Snooze
from tests.unit.test_incidents_grouping import KEY, T0, alert

K2 = "team=ads|feature=copygen|customer=acme|model=gpt-4o|environment=production"


def opened() -> tuple[Dispatcher, str]:
    d = Dispatcher()
    d.observe(alert(KEY, "spend", 0, 1))
    notes = d.advance(T0 + timedelta(minutes=3))
    assert [n.kind for n in notes] == ["open"]
    return d, notes[0].incident.id


def test_acknowledge_is_recorded_announced_once_and_stops_reminders() -> None:
    d, iid = opened()
    at = T0 + timedelta(minutes=10)
    notes = d.command(Acknowledge(iid, by="U_ALICE", at=at))
    assert [(n.kind, n.incident.acked_by) for n in notes] == [("ack", "U_ALICE")]
    assert d.command(Acknowledge(iid, by="U_ALICE", at=at)) == []  # replayed button press
    assert d.command(Acknowledge(iid, by="U_BOB", at=at)) == []  # the first owner stays
    assert d.advance(T0 + timedelta(hours=9)) == []  # no reminder at 4 h or 8 h
    # a resolution still shows
    assert [n.kind for n in d.observe(alert(KEY, "spend", 0, 9 * 60, status="resolved"))] == ["resolve"]


def test_snooze_holds_updates_and_reminders_until_it_ends() -> None:
    d, iid = opened()
    until = T0 + timedelta(hours=1, minutes=3)
    assert [n.kind for n in d.command(Snooze(iid, until=until, by="U1", at=T0 + timedelta(minutes=3)))] == ["snooze"]
    d.observe(alert(K2, "spend", 20, 21))  # joins the snoozed incident
    held = [n for m in range(22, 63) for n in d.advance(T0 + timedelta(minutes=m))]
    assert held == []
    notes = d.advance(until)
    assert [(n.kind, len(n.new_alerts)) for n in notes] == [("update", 1)]
    # a shorter snooze later does not cut the longer one short
    assert d.command(Snooze(iid, until=until - timedelta(minutes=30), by="U2", at=until)) == []


def test_snoozed_incident_resolution_is_still_announced() -> None:
    d, iid = opened()
    d.command(Snooze(iid, until=T0 + timedelta(hours=24), by="U1", at=T0))
    assert [n.kind for n in d.observe(alert(KEY, "spend", 0, 30, status="resolved"))] == ["resolve"]


def test_manual_resolve_closes_with_alerts_still_firing_and_a_new_alert_reopens_it() -> None:
    d, iid = opened()
    notes = d.command(Resolve(iid, by="U1", at=T0 + timedelta(minutes=5)))
    assert [(n.kind, n.incident.resolved_by) for n in notes] == [("resolve", "U1")]
    # the alert that was firing resolves later: nothing more to say
    assert d.observe(alert(KEY, "spend", 0, 20, status="resolved")) == []
    assert d.advance(T0 + timedelta(minutes=30)) == []
    notes = d.observe(alert(KEY, "spend", 60, 61))  # the same cause an hour later
    assert [(n.kind, n.incident.id, n.incident.reopened, n.incident.resolved_by) for n in notes] == \
        [("reopen", iid, 1, None)]


def test_command_for_an_unknown_or_unannounced_incident_changes_nothing_visible() -> None:
    d = Dispatcher()
    d.observe(alert(KEY, "spend", 0, 1))
    iid = next(iter(d.book.incidents))
    assert d.command(Acknowledge("inc-none", by="U1", at=T0)) == []
    assert d.command(Acknowledge(iid, by="U1", at=T0)) == []  # stored; the first message will show it
    notes = d.advance(T0 + timedelta(minutes=3))
    assert [(n.kind, n.incident.acked_by) for n in notes] == [("open", "U1")]
