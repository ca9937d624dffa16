"""The alert store against real databases: SQLite, and PostgreSQL when reachable (always in CI)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.alert import Alert
from schemas.deadletter import DeadLetter
from sinks.store import AlertStore

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=timezone.utc)


def make_alert(series: str = "team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production",
               status: str = "firing", started: datetime = T0) -> Alert:
    return Alert(series_key=series, metric="cost_per_inference", detector="ew_zscore", score=0.99999,
                 observed=0.0257, baseline=0.0067, expected_low=0.005, expected_high=0.009,
                 window_start=started, window_end=started + timedelta(minutes=1), started_at=started,
                 status=status)


def test_alert_round_trips_with_utc_times(database_url: str) -> None:
    store = AlertStore(database_url)
    try:
        assert store.save_alert(make_alert())
        [got] = store.alerts()
        assert got == make_alert()
        assert got.started_at.tzinfo is not None and got.started_at == T0
    finally:
        store.close()


def test_redelivered_alert_is_not_duplicated_and_resolution_applies_once(database_url: str) -> None:
    store = AlertStore(database_url)
    try:
        assert store.save_alert(make_alert()) is True
        assert store.save_alert(make_alert()) is False  # at-least-once redelivery: a no-op
        resolved = make_alert(status="resolved")
        assert store.save_alert(resolved) is True
        assert store.save_alert(resolved) is False
        assert [a.status for a in store.alerts()] == ["resolved"]
        assert store.alerts(status="firing") == []
    finally:
        store.close()


def test_distinct_incidents_are_kept_apart_and_ordered(database_url: str) -> None:
    store = AlertStore(database_url)
    try:
        later = make_alert(started=T0 + timedelta(hours=2))
        other = make_alert(series="team=search|feature=q|customer=internal|model=m|environment=production")
        for a in (later, make_alert(), other):
            store.save_alert(a)
        got = store.alerts()
        assert [a.started_at for a in got] == [T0, T0, T0 + timedelta(hours=2)]
        assert len({a.fingerprint for a in got}) == 3
    finally:
        store.close()


def test_dead_letters_keep_reason_and_original_bytes(database_url: str) -> None:
    store = AlertStore(database_url)
    try:
        raw = b'\x00\xffnot json at all'
        store.save_dead_letter(DeadLetter.from_bytes(raw, reason="invalid JSON", topic="usage.llm",
                                                     partition=2, offset=41, index=None))
        [dl] = store.dead_letters()
        assert (dl.reason, dl.topic, dl.partition, dl.offset) == ("invalid JSON", "usage.llm", 2, 41)
        assert dl.original_bytes() == raw
    finally:
        store.close()


def test_a_redelivered_dead_letter_is_stored_once_and_keeps_its_key(database_url: str) -> None:
    store = AlertStore(database_url)
    try:
        dl = DeadLetter.from_bytes(b"[1]", reason="bad", topic="costs", partition=1, offset=9, key=b"team=a")
        assert store.save_dead_letter(dl) is True
        assert store.save_dead_letter(DeadLetter.model_validate_json(dl.model_dump_json())) is False
        [(_, got)] = store.dead_letter_rows()
        assert got.original_key() == b"team=a" and got.original_bytes() == b"[1]"
        other = DeadLetter.from_bytes(b"[1]", reason="bad", topic="costs", partition=1, offset=10)
        assert store.save_dead_letter(other) is True
        assert len(store.dead_letters()) == 2
    finally:
        store.close()
