"""The state layer's guarantees, on the agents' handlers with in-memory tables (no broker).

Each test is one defect of issue 8, replayed as a hand-worked scenario: a crash between an
emission and its state write, a redelivered origin, an undecodable value, a stall, two producers
at different lags, a budget alone on its partition, a flood of invented customers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from guardrails.budget_book import BudgetBook
from guardrails.spend_routing import spend_by_budget
from schemas.bucket import load_batch
from schemas.cardinality import CardinalityLimiter
from schemas.cost import CostRecord
from streams.agents.aggregate import Aggregate
from streams.agents.budgets import Budgets
from streams.agents.detect import Detect
from streams.agents.guard import guarded
from streams.agents.normalize import PUNCT
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.state.clocks import EventClock, PartitionClocks, Punctuation, SourceProgress
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import BudgetState
from streams.state.windows import KeyWindows

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
SETTINGS = Settings(_env_file=None, allowed_lateness_seconds=0, bucket_seconds=60)


def run(coro):
    return asyncio.run(coro)


def costs(src: str, off: int, clock: str, newest: float, *recs: tuple[float, float]) -> bytes:
    return orjson.dumps({"o": [src, off], "clk": [clock, newest],
                         "records": [{"ts": ts, "cost_usd": usd, "requests": 1} for ts, usd in recs]})


def punct(wall: float, clocks: dict[str, list], idle_ok: bool = False, scan: bool = True) -> bytes:
    parts: dict[str, PartitionClocks] = {}
    for clock, reading in clocks.items():
        parts.setdefault(clock.split(":")[0], PartitionClocks(idle_ok=idle_ok, clocks={})).clocks[clock] = reading
    return Punctuation(wall=wall, scan=scan, parts=parts).model_dump_json().encode()


class Aggregator:
    def __init__(self, table: dict | None = None) -> None:
        self.table: dict[str, bytes] = {} if table is None else table
        self.sent: list[tuple[str, bytes]] = []

        async def send(key: str, value: bytes) -> None:
            self.sent.append((key, value))

        self.handler = Aggregate(TypedTable(self.table, "open_buckets", KeyWindows), send, SETTINGS)

    def feed(self, messages: list[tuple[str, bytes]], offsets: list[int] | None = None) -> None:
        for i, (key, value) in enumerate(messages):
            run(self.handler.handle(key, value, 0, T0 + 10_000, offset=None if offsets is None else offsets[i]))

    def batches(self) -> list[tuple[str, int, list[tuple[float, float, bool]]]]:
        out = []
        for _, value in self.sent:
            b = load_batch(value)
            out.append((b.key, b.seq, [(x.start.timestamp(), round(x.spend_usd, 9), x.late) for x in b.buckets]))
        return out


def test_a_crash_between_emission_and_state_write_re_emits_the_same_batches() -> None:
    """Defect 1: aggregate sends closed buckets, then writes its state. A crash in between used to re-emit
    buckets that budgets added again. Now the replay re-emits byte-identical batches under the same
    (key, seq), whatever the interleaving of records and punctuations."""
    gw = "usage.llm/0:gw"
    messages = [
        ("k", costs("usage.llm/0", 1, gw, T0 + 10, (T0 + 10, 1.0))),
        ("k", costs("usage.llm/0", 2, gw, T0 + 70, (T0 + 70, 2.0))),     # closes minute 0
        (PUNCT, punct(T0 + 500, {gw: [T0 + 70, False]})),
        ("k", costs("usage.llm/0", 3, gw, T0 + 75, (T0 + 30, 4.0))),     # late for minute 0: a correction
        ("k", costs("usage.llm/0", 4, gw, T0 + 130, (T0 + 130, 8.0))),   # closes minute 1
        (PUNCT, punct(T0 + 900, {gw: [T0 + 130, True]})),                 # gw idle: minute 2 closes
    ]
    first = Aggregator()
    first.feed(messages[:2])
    saved_after_two = dict(first.table)  # the changelog as it stood when the worker was killed
    first.feed(messages[2:])
    replayed = Aggregator(saved_after_two)
    replayed.feed(messages[2:])  # the redelivered messages after the crash (offsets not committed)
    assert replayed.batches() == first.batches()[1:]
    assert first.batches() == [
        ("k", 1, [(T0, 1.0, False)]),
        ("k", 2, [(T0, 4.0, True)]),
        ("k", 3, [(T0 + 60, 2.0, False)]),
        ("k", 4, [(T0 + 120, 8.0, False)]),
    ]


def test_a_state_recovered_ahead_of_the_committed_offset_does_not_apply_old_messages_again() -> None:
    """The changelog write of a message can land while the offset commit does not: after a kill -9 the
    worker recovers a state that already holds messages it is about to read again. An old punctuation
    ("gw is idle") applied on top of a record that woke gw used to close minute 1 half-full, as seq 2;
    the first run had closed it whole as seq 2, so consumers kept the first copy and dropped the
    re-emission's late correction: 4.00 dollars lost. Hand-worked: minute 1 holds 2.00 + 4.00."""
    gw = "usage.llm/0:gw"
    messages = [
        ("k", costs("usage.llm/0", 1, gw, T0 + 10, (T0 + 10, 1.0))),     # offset 10
        (PUNCT, punct(T0 + 500, {gw: [T0 + 10, True]})),                  # 11: gw idle -> minute 0 closes (seq 1)
        ("k", costs("usage.llm/0", 2, gw, T0 + 70, (T0 + 70, 2.0))),     # 12: gw awake again, minute 1 opens
        ("k", costs("usage.llm/0", 3, gw, T0 + 80, (T0 + 80, 4.0))),     # 13
        ("k", costs("usage.llm/0", 4, gw, T0 + 130, (T0 + 130, 8.0))),   # 14: closes minute 1 (seq 2)
    ]
    offsets = [10, 11, 12, 13, 14]
    first = Aggregator()
    first.feed(messages[:3], offsets[:3])
    saved = dict(first.table)  # state after offset 12 reached the changelog...
    first.feed(messages[3:], offsets[3:])
    replayed = Aggregator(saved)
    replayed.feed(messages[1:], offsets[1:])  # ...but the committed offset was 11: 11 and 12 are read again
    assert first.batches() == [("k", 1, [(T0, 1.0, False)]), ("k", 2, [(T0 + 60, 6.0, False)])]
    assert replayed.batches() == first.batches()[1:]


def test_a_redelivered_costs_message_is_applied_once() -> None:
    gw = "usage.llm/0:gw"
    agg = Aggregator()
    msg = ("k", costs("usage.llm/0", 5, gw, T0 + 10, (T0 + 10, 1.0)))
    agg.feed([msg, msg, ("k", costs("usage.llm/0", 6, gw, T0 + 70, (T0 + 70, 0.5)))])
    assert agg.batches() == [("k", 1, [(T0, 1.0, False)])]


def test_a_producer_an_hour_behind_closes_its_minutes_on_its_own_clock() -> None:
    """Defect 6: one watermark per partition closed each minute of a lagging gateway at its first message."""
    now, behind = "usage.llm/0:eu", "usage.llm/0:us"
    agg = Aggregator()
    agg.feed([("a", costs("usage.llm/0", 1, now, T0 + 3600, (T0 + 3600, 1.0)))])
    for i in range(3):  # the lagging gateway's minute 0, in three messages
        agg.feed([("b", costs("usage.llm/0", 2 + i, behind, T0 + 10 * i, (T0 + 10 * i, 1.0)))])
    agg.feed([("b", costs("usage.llm/0", 5, behind, T0 + 61, (T0 + 61, 1.0)))])
    assert [x for x in agg.batches() if x[0] == "b"] == [("b", 1, [(T0, 3.0, False)])]


def test_a_stall_flushes_nothing_while_records_are_waiting() -> None:
    """Defect 5: after a stall of more than the idle time, the flush closed every bucket before the
    backlog was read. Idle now means: caught up with the partition's end (on two readings in a row) and
    quiet for the idle time while the worker was watching."""
    p = SourceProgress(idle_after=120.0)
    p.assigned("usage.llm/0", wall=T0)
    p.processed("usage.llm/0", 10, "usage.llm/0:gw", T0 - 5, wall=T0)
    stalled = p.punctuation({"usage.llm/0": 500}, wall=T0 + 600)  # 10 minutes later, 489 messages unread
    assert stalled.reading("usage.llm/0:gw") == (T0 - 5, False)
    assert not stalled.parts["usage.llm/0"].idle_ok
    caught_up = p.punctuation({"usage.llm/0": 11}, wall=T0 + 601)  # readings every second (reading_interval)
    assert caught_up.reading("usage.llm/0:gw") == (T0 - 5, False)  # quiet for 10 minutes, but unwatched
    for t in range(602, 720):
        assert p.punctuation({"usage.llm/0": 11}, wall=T0 + t).reading("usage.llm/0:gw") == (T0 - 5, False)
    assert p.punctuation({"usage.llm/0": 11}, wall=T0 + 720).reading("usage.llm/0:gw") == (T0 - 5, True)


def test_after_a_broker_pause_every_producer_gets_the_idle_time_to_deliver() -> None:
    """The broker stops answering for 20 s; the end-offset request waits for it and comes back with the
    old end (the producers' held-back records are not written yet). That reading cannot idle a producer
    that went quiet just before the pause: quiet time counts only while the worker was watching."""
    p = SourceProgress(idle_after=3.0)  # readings every 1.5 s
    p.assigned("usage.llm/0", wall=T0)
    for i, t in enumerate((0.0, 0.5, 1.0)):
        p.processed("usage.llm/0", i, "usage.llm/0:us", T0 - 60 + t, wall=T0 + t)
    assert p.punctuation({"usage.llm/0": 3}, wall=T0 + 1.5).reading("usage.llm/0:us") == (T0 - 59, False)
    after_pause = p.punctuation({"usage.llm/0": 3}, wall=T0 + 22.0)  # 20.5 s since the last reading
    assert after_pause.reading("usage.llm/0:us") == (T0 - 59, False)
    assert p.punctuation({"usage.llm/0": 3}, wall=T0 + 23.5).reading("usage.llm/0:us") == (T0 - 59, False)
    # held-back records arrive and are processed; once quiet for 3 s of watching, it may idle
    p.processed("usage.llm/0", 3, "usage.llm/0:us", T0 - 40, wall=T0 + 24.0)
    assert p.punctuation({"usage.llm/0": 4}, wall=T0 + 25.0).reading("usage.llm/0:us") == (T0 - 40, False)
    assert p.punctuation({"usage.llm/0": 4}, wall=T0 + 26.5).reading("usage.llm/0:us") == (T0 - 40, False)
    assert p.punctuation({"usage.llm/0": 4}, wall=T0 + 28.0).reading("usage.llm/0:us") == (T0 - 40, True)


def test_slow_but_steady_end_offset_answers_still_let_a_quiet_producer_idle() -> None:
    """tests/e2e/test_restart.py, intermittently: the restarted worker never closed its keys' last minutes.
    Its end-offset requests wait behind the consumer's fetch long-poll (up to 1.5 s each, more under load), and
    the gap between two *answers* (interval + answer time) passed the 4.5 s that counts as a stall at every
    reading, so the quiet count restarted for ever. A stall is now judged on the ask (soon after the last
    answer?) and on the answer (soon after the ask?) apart."""
    p = SourceProgress(idle_after=3.0)  # readings every 1.5 s
    p.assigned("usage.llm/0", wall=T0)
    p.processed("usage.llm/0", 0, "usage.llm/0:restart", T0 - 60, wall=T0)
    answered, idle_at = T0, None
    for _ in range(20):
        asked = answered + 1.5
        answered = asked + 3.2  # each answer 3.2 s after its ask: 4.7 s between answers
        if p.punctuation({"usage.llm/0": 1}, wall=answered, asked=asked).reading("usage.llm/0:restart")[1]:
            idle_at = answered
            break
    assert idle_at is not None and idle_at - T0 <= 3 * 4.7, idle_at
    # a request that itself waited longer than a stall (the broker paused) still restarts the count
    p.processed("usage.llm/0", 1, "usage.llm/0:restart", T0 - 30, wall=answered + 1)
    assert not p.punctuation({"usage.llm/0": 2}, wall=answered + 25, asked=answered + 2.5).parts["usage.llm/0"].idle_ok


def test_a_producer_whose_records_sit_in_an_unreported_batch_is_not_idled() -> None:
    """The embedded broker reports a partition's end as its last batch's base offset + 1: a reading
    taken while that batch is being processed looks caught up. A producer whose records are in that
    batch must not be judged idle on it; the next reading, after the batch was processed, sees them."""
    p = SourceProgress(idle_after=3.0)
    p.assigned("usage.llm/0", wall=T0)
    p.processed("usage.llm/0", 0, "usage.llm/0:late", T0 - 3600, wall=T0)
    p.processed("usage.llm/0", 1, "usage.llm/0:eu", T0 - 5, wall=T0 + 10)  # first record of the last batch
    first = p.punctuation({"usage.llm/0": 2}, wall=T0 + 10.5)  # "end 2": the batch really ends at 4
    assert first.reading("usage.llm/0:late") == (T0 - 3600, False)
    p.processed("usage.llm/0", 2, "usage.llm/0:late", T0 - 3590, wall=T0 + 11)  # the rest of the batch
    p.processed("usage.llm/0", 3, "usage.llm/0:late", T0 - 3580, wall=T0 + 11)
    second = p.punctuation({"usage.llm/0": 4}, wall=T0 + 12)
    assert second.reading("usage.llm/0:late") == (T0 - 3580, False)
    quiet = p.punctuation({"usage.llm/0": 4}, wall=T0 + 15)
    assert quiet.reading("usage.llm/0:late") == (T0 - 3580, True)


def test_undecodable_state_is_quarantined_and_never_reset() -> None:
    """Defect 4: a value that cannot be decoded was logged and started afresh (open spend lost)."""
    agg = Aggregator({"k": b"\xc1\x01garbage"})
    with pytest.raises(StateQuarantined) as err:
        agg.feed([("k", costs("usage.llm/0", 1, "usage.llm/0:gw", T0, (T0, 1.0)))])
    assert err.value.key == "k" and err.value.table == "open_buckets"
    assert agg.table["k"] == b"\xc1\x01garbage" and agg.sent == []


BOOK = BudgetBook.from_yaml_text("""
budgets:
  - {id: org, cap_usd: 1000, period: day}
  - {id: research, parent: org, scope: {team: research}, cap_usd: 100, period: day}
  - {id: research-sandbox, parent: research, scope: {team: research, tier: sandbox}, cap_usd: 10, period: day}
  - {id: ads, parent: org, scope: {team: ads}, cap_usd: 1, period: day,
     rules: [{name: fast, long_s: 3600, short_s: 300, factor: 14.4, severity: page}]}
""")


def test_tier_scoped_budgets_receive_the_spend_of_their_tier() -> None:
    """Defect 2: spend was routed by bucket key, which drops the tier: research-sandbox got nothing."""
    t = datetime.fromtimestamp(T0, tz=timezone.utc)
    recs = [CostRecord(ts=t, source="llm", team="research", tier="sandbox", cost_usd=2.5),
            CostRecord(ts=t, source="llm", team="research", tier="production", cost_usd=4.0)]
    routed = spend_by_budget(recs, BOOK)
    assert routed["research-sandbox"] == [[int(T0), 2.5]]
    assert routed["research"] == [[int(T0), 6.5]] and routed["org"] == [[int(T0), 6.5]]


class BudgetAgent:
    def __init__(self) -> None:
        self.trackers = TypedTable({}, "burn_trackers", BudgetState)
        self.alerts: list = []

        async def send(alert) -> None:
            self.alerts.append(alert)

        self.handler = Budgets(BOOK, self.trackers, TypedTable({}, "clocks", EventClock), send)

    def spend(self, budget: str, partition: int, src: str, off: int, minute: float, usd: float) -> None:
        run(self.handler.handle(budget, orjson.dumps({"o": [src, off], "spend": [[minute, usd]]}), partition))

    def punct(self, partition: int, value: bytes) -> None:
        run(self.handler.handle(PUNCT, value, partition))


def test_budget_spend_is_counted_once_whatever_is_redelivered() -> None:
    agent = BudgetAgent()
    for _ in range(3):  # the message, its redelivery, and normalize running again on the same usage offset
        agent.spend("research", 1, "usage.llm/2", 40, T0, 3.0)
    agent.spend("research", 1, "usage.llm/3", 7, T0, 1.0)  # another usage partition: its own offsets
    agent.spend("research", 1, "usage.llm/2", 41, T0 + 60, 2.0)
    assert agent.trackers.get("research").tracker.period_spent_usd == pytest.approx(6.0)


def test_a_budget_incident_resolves_on_the_producers_clock_alone_on_its_partition() -> None:
    """Defect 7: clocks were borrowed from other budgets on the same worker, so a surge that stopped
    resolved only if some other budget saw newer spend."""
    agent = BudgetAgent()
    for m in range(20):  # $0.10/min on a $1/day budget: far above the even pace
        agent.spend("ads", 3, "usage.llm/0", m, T0 + 60 * m, 0.10)
    assert [(a.metric, a.status) for a in agent.alerts][:1] == [("burn_rate.fast", "firing")]
    clock = "usage.llm/0:gw"
    agent.punct(3, punct(T0 + 5000, {clock: [T0 + 19 * 60, False]}))
    agent.punct(3, punct(T0 + 5003, {clock: [T0 + 19 * 60, True]}))     # spend stopped: the producer went idle
    agent.punct(3, punct(T0 + 5003 + 3 * 3600, {clock: [T0 + 19 * 60, True]}))  # three hours of wall time later
    assert ("burn_rate.fast", "resolved") in [(a.metric, a.status) for a in agent.alerts]


def test_detect_sends_alerts_before_it_saves_and_learns_each_bucket_once() -> None:
    """Defect 3: state was saved ("firing") before the alert was sent: a crash between lost the alert."""
    table: dict[str, bytes] = {}
    sent, fail = [], {"next": False}

    async def send(alert) -> None:
        if fail["next"]:
            fail["next"] = False
            raise KafkaTimeoutError()
        sent.append(alert)

    detect = Detect(table, BucketScorer(Settings(_env_file=None, detector="ew_zscore")), send)
    from schemas.bucket import Bucket, dump_batch

    def batch(seq: int, minute: int, cost: float) -> bytes:
        b = Bucket(key="team=a", start=datetime.fromtimestamp(T0 + 60 * minute, tz=timezone.utc), seconds=60,
                   spend_usd=10 * cost, requests=10)
        return dump_batch("team=a", seq, [b])

    for i in range(50):
        run(detect.handle(batch(i, i, 0.10)))
    fail["next"] = True
    with pytest.raises(KafkaTimeoutError):
        run(detect.handle(batch(50, 50, 0.50)))  # the spike: its alert could not be sent
    run(detect.handle(batch(50, 50, 0.50)))  # retried (or redelivered after a crash)
    run(detect.handle(batch(50, 50, 0.50)))  # and once more: already learnt, nothing new
    assert [(a.metric, a.status) for a in sent] == [("spend", "firing"), ("cost_per_inference", "firing")]


def test_a_transient_send_error_is_retried_not_dead_lettered() -> None:
    """Defect 9 (smaller): a send that timed out was dead-lettered; it is retried until the broker answers."""
    calls = []

    async def handle(event) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaTimeoutError()

    event = SimpleNamespace(value=b"{}", message=SimpleNamespace(topic="costs", partition=0, offset=1, key=None))
    run(guarded("aggregate", event, handle, retry_first=0.001))
    assert len(calls) == 3


def test_one_hundred_thousand_invented_customers_stay_bounded() -> None:
    lim = CardinalityLimiter({"customer": 1000})
    t = datetime.fromtimestamp(T0, tz=timezone.utc)
    keys = {lim.admit(CostRecord(ts=t, source="llm", team="ads", customer=f"c{i}", cost_usd=0.01)).allocation_key
            for i in range(100_000)}
    assert len(keys) == 1001 and lim.overflow["customer"] == 99_000


def test_a_billing_row_is_spread_over_its_charge_period() -> None:
    """Defect 6: a FOCUS row's whole charge period landed in one minute."""
    kw = KeyWindows("k", 60)
    kw.add({"ts": T0, "end": T0 + 3600, "cost_usd": 6.0})
    kw.see_clock("usage.billing/0:focus", T0 + 7200)
    closed = kw.close_due(lateness=0)
    assert len(closed) == 60 and {round(b.spend_usd, 9) for b in closed} == {0.1}
    assert sum(b.records for b in closed) == 1  # one row, whatever it is spread over
    assert closed[0].start == datetime.fromtimestamp(T0, tz=timezone.utc)
    assert closed[-1].start == datetime.fromtimestamp(T0, tz=timezone.utc) + timedelta(minutes=59)


def test_a_quiet_key_expires_and_detect_forgets_its_monitors() -> None:
    """Defect 8: nothing expired open_buckets or monitors."""
    gw = "usage.llm/0:gw"
    agg = Aggregator()
    agg.feed([("k", costs("usage.llm/0", 1, gw, T0 + 10, (T0 + 10, 1.0)))])
    ttl = SETTINGS.key_ttl_seconds
    agg.feed([(PUNCT, punct(T0 + 10_000 + ttl - 1, {gw: [T0 + 10, True]}))])  # closes minute 0, keeps the key
    assert "k" in agg.table
    agg.feed([(PUNCT, punct(T0 + 10_000 + ttl, {gw: [T0 + 10, True]}))])  # quiet for the whole ttl
    assert "k" not in agg.table
    forget = load_batch(agg.sent[-1][1])
    assert (forget.key, forget.seq, forget.forget, forget.buckets) == ("k", 2, True, [])

    table = {"k#spend": b"x", "k#children": b"y", "other#spend": b"z"}
    run(Detect(table, BucketScorer(SETTINGS), lambda a: None).handle(agg.sent[-1][1]))
    assert table == {"other#spend": b"z"}


def test_a_forged_key_windows_value_is_refused_on_decode() -> None:
    """A changelog value with the right tag but impossible fields (seconds=0, short rows) is quarantined."""
    from streams.state.codec import StateDecodeError, decode, encode

    kw = KeyWindows("k", 60)
    kw.add({"ts": T0, "cost_usd": 1.0})
    assert decode(encode(kw)).sums == kw.sums
    for field, bad in (("seconds", 0), ("sums", {int(T0): [1.0]}), ("clocks", {"c": [1.0]})):
        forged = KeyWindows("k", 60)
        setattr(forged, field, bad)
        with pytest.raises(StateDecodeError):
            decode(encode(forged))


def test_a_credit_is_counted_apart_and_never_scored_as_spend() -> None:
    """Credits (negative FOCUS costs) are netted by budgets, and kept out of the spend series detection scores."""
    from streams.state.windows import window_record

    t = datetime.fromtimestamp(T0, tz=timezone.utc)
    kw = KeyWindows("k", 60)
    for cost in (3.0, -5.0):
        kw.add(window_record(CostRecord(ts=t, source="billing", team="ads", cost_usd=cost)))
    (bucket,) = kw.close_until(T0 + 60)
    assert (bucket.spend_usd, bucket.credit_usd, bucket.records) == (3.0, -5.0, 2)
    routed = spend_by_budget([CostRecord(ts=t, source="billing", team="ads", cost_usd=c) for c in (3.0, -5.0)],
                             BudgetBook.from_yaml_text("budgets: [{id: b, cap_usd: 10, sources: [billing]}]"))
    assert routed == {"b": [[int(T0), -2.0]]}
