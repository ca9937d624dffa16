"""Early firing (issue 13): a spend spike alerts from its open minute, once, and its closed minute continues the
same incident. Hand-worked on the agents' handlers with in-memory tables (no broker)."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from detectors.monitor import SeriesMonitor
from detectors.registry import make_detector
from schemas.alert import Alert
from schemas.bucket import Bucket, PartialBatch, dump_batch, dump_partial, load_batch, load_message
from streams.agents.aggregate import Aggregate
from streams.agents.detect import Detect
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.state.codec import decode
from streams.state.tables import TypedTable
from streams.state.windows import KeyWindows

KEY = "team=a|feature=f|customer=c|model=m|environment=prod"
T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
NORMAL = 0.0168  # the key's spend per minute ($), 8 calls
EARLY = Settings(_env_file=None, early_firing=True)


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


def bucket(i: int, spend: float, calls: int = 8) -> Bucket:
    return Bucket(key=KEY, start=minute(i), seconds=60, spend_usd=spend, requests=calls, records=calls)


def warm_spend(i: int) -> float:
    return NORMAL * (1 + 0.05 * random.Random(i).random())


class Detector:
    """The detect handler on a dict table, with the alerts it sent."""

    def __init__(self, settings: Settings = EARLY) -> None:
        self.table: dict[str, bytes] = {}
        self.sent: list[Alert] = []
        self.fail_next = False

        async def send(alert: Alert) -> None:
            if self.fail_next:
                self.fail_next = False
                raise KafkaTimeoutError()
            self.sent.append(alert)

        self.handler = Detect(self.table, BucketScorer(settings), send)

    def feed(self, value: bytes) -> list[Alert]:
        before = len(self.sent)
        asyncio.run(self.handler.handle(value))
        return self.sent[before:]

    def warm(self, minutes: int = 150) -> None:
        """Closed minutes 0 .. minutes-1, one batch each (seq = minute + 1), spend about NORMAL."""
        for i in range(minutes):
            assert self.feed(dump_batch(KEY, i + 1, [bucket(i, warm_spend(i))])) == []


def spend_only(alerts: list[Alert]) -> list[tuple[str, datetime, str]]:
    return [(a.status, a.started_at, a.fingerprint) for a in alerts if a.metric == "spend"]


def test_a_partial_at_ten_times_expected_opens_the_incident_once_and_the_closed_minute_continues_it() -> None:
    d = Detector()
    d.warm(150)  # minutes 0..149 scored; minute 150 still open (lateness) when minute 151 spikes
    [early] = d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80)))
    assert (early.metric, early.status, early.started_at, early.window_start) == ("spend", "firing", minute(151),
                                                                                   minute(151))
    assert early.observed == pytest.approx(10 * NORMAL) and early.observed > 5 * early.baseline
    assert d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80))) == []   # redelivered: nothing new
    assert d.feed(dump_partial(KEY, bucket(151, 14 * NORMAL, 110))) == []  # grown further: the incident is open
    assert d.feed(dump_batch(KEY, 151, [bucket(150, warm_spend(150))])) == []  # the minute before: not quiet
    assert d.feed(dump_batch(KEY, 152, [bucket(151, 15 * NORMAL, 120)])) == []  # closed: confirms, no second alert
    later = []
    for i in range(152, 160):
        later += d.feed(dump_batch(KEY, i + 1, [bucket(i, warm_spend(i))]))
    assert spend_only(later) == [("resolved", minute(151), early.fingerprint)]  # the same incident resolves

    # the closed path alone opens the very same incident (same fingerprint), only later
    closed_only = Detector()
    closed_only.warm(150)
    closed_only.feed(dump_batch(KEY, 151, [bucket(150, warm_spend(150))]))
    [late] = closed_only.feed(dump_batch(KEY, 152, [bucket(151, 15 * NORMAL, 120)]))
    assert (late.status, late.fingerprint) == ("firing", early.fingerprint)


def test_a_partial_below_the_threshold_changes_nothing() -> None:
    d = Detector()
    d.warm(150)
    before = dict(d.table)
    assert d.feed(dump_partial(KEY, bucket(151, 1.2 * NORMAL, 10))) == []
    assert d.table == before  # not even the monitors' bytes: nothing was learnt


def test_a_partial_of_a_minute_already_scored_or_of_a_cold_series_changes_nothing() -> None:
    d = Detector()
    assert d.feed(dump_partial(KEY, bucket(0, 100 * NORMAL, 800))) == [] and d.table == {}  # no baseline yet
    d.warm(150)
    before = dict(d.table)
    assert d.feed(dump_partial(KEY, bucket(149, 100 * NORMAL, 800))) == []  # minute 149 has closed already
    assert d.table == before


def test_partials_do_nothing_with_early_firing_off() -> None:
    d = Detector(Settings(_env_file=None))
    d.warm(150)
    before = dict(d.table)
    assert d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80))) == [] and d.table == before


def test_an_early_alert_that_could_not_be_sent_is_sent_on_the_retry_and_only_once() -> None:
    d = Detector()
    d.warm(150)
    d.fail_next = True
    with pytest.raises(KafkaTimeoutError):
        d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80)))  # nothing saved: the monitor has no incident
    [alert] = d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80)))  # retried (or redelivered)
    assert d.feed(dump_partial(KEY, bucket(151, 10 * NORMAL, 80))) == []
    assert d.feed(dump_batch(KEY, 151, [bucket(151, 12 * NORMAL, 100)])) == []
    assert alert.status == "firing" and alert.started_at == minute(151)


def test_the_early_minute_closing_below_the_threshold_resolves_the_incident_at_once() -> None:
    """The closed minute is scored on the state after the minutes between were learnt: should that have moved
    the baseline so far that the closed value is normal after all, the early incident resolves there."""
    m = SeriesMonitor(make_detector(), threshold=0.9999, min_ratio=1.5)
    for i in range(150):
        m.observe(minute(i), warm_spend(i))
    opened = m.peek(minute(151), 10 * NORMAL)
    assert opened is not None and opened.status == "firing" and m.peek(minute(151), 20 * NORMAL) is None
    assert m.observe(minute(150), warm_spend(150)) is None and m.firing  # before it: not a quiet bucket
    resolved = m.observe(minute(151), warm_spend(151))
    assert resolved is not None and (resolved.status, resolved.started_at) == ("resolved", minute(151))
    assert not m.firing


# ---------------------------------------------------------------------------------------- aggregate side

GW = "usage.llm/0:gw"
T = T0.timestamp()


def costs(off: int, newest: float, *recs: tuple[float, float]) -> bytes:
    return orjson.dumps({"o": ["usage.llm/0", off], "clk": [GW, newest],
                         "records": [{"ts": ts, "cost_usd": usd, "requests": 1} for ts, usd in recs]})


def traffic() -> list[bytes]:
    """Minutes 0..4 at $0.01 a call, 8 calls a minute; minute 5 spikes: 100 calls in its first 10 s; then
    minute 6 at the usual rate closes minute 5 (lateness 0)."""
    out, off = [], 0
    for m in range(5):
        for j in range(8):
            off += 1
            ts = T + 60 * m + 7 * j
            out.append(costs(off, ts, (ts, 0.01)))
    for j in range(100):
        off += 1
        ts = T + 300 + j * 0.1
        out.append(costs(off, ts, (ts, 0.01)))
    for j in range(8):
        off += 1
        ts = T + 360 + 7 * j
        out.append(costs(off, ts, (ts, 0.01)))
    return out


def aggregate(settings: Settings, messages: list[bytes]) -> list[bytes]:
    sent: list[bytes] = []

    async def send(key: str, value: bytes) -> None:
        sent.append(value)

    agg = Aggregate(TypedTable({}, "open_buckets", KeyWindows), send, settings)
    for off, value in enumerate(messages):
        asyncio.run(agg.handle(KEY, value, 0, T + 10_000, offset=off))
    return sent


def test_aggregate_sends_a_spiking_minute_early_without_touching_closed_batches_or_spend() -> None:
    off = Settings(_env_file=None, allowed_lateness_seconds=0)
    on = Settings(_env_file=None, allowed_lateness_seconds=0, early_firing=True)
    plain, early = aggregate(off, traffic()), aggregate(on, traffic())
    messages = [load_message(v) for v in early]
    partials = [m for m in messages if isinstance(m, PartialBatch)]
    closed = [v for v, m in zip(early, messages) if not isinstance(m, PartialBatch)]
    assert closed == plain  # the same closed batches, byte for byte, under the same seq numbers
    # the spiking minute was sent as it filled, a few times (at 1.5x the last minute, then each 1.5x more)
    assert [p.partial.start for p in partials] == [minute(5)] * len(partials) and 3 <= len(partials) <= 6
    spends = [p.partial.spend_usd for p in partials]
    assert spends == sorted(spends) and spends[0] == pytest.approx(0.08 * 1.5, abs=0.011)
    assert all(p.seq == 0 and p.buckets == [] for p in partials)
    # a reader of closed batches sees each partial as an empty batch under seq 0: spend counts exactly the records
    batches = {(b.key, b.seq): b for b in map(load_batch, early)}
    assert sum(x.spend_usd for b in batches.values() for x in b.buckets) == pytest.approx(
        sum(x.spend_usd for b in map(load_batch, plain) for x in b.buckets))
    assert (KEY, 0) in batches and batches[(KEY, 0)].buckets == []


def test_a_key_spending_as_usual_sends_no_partial() -> None:
    on = Settings(_env_file=None, allowed_lateness_seconds=0, early_firing=True)
    sent = aggregate(on, traffic()[:40])  # minutes 0..4 only
    assert not any(isinstance(load_message(v), PartialBatch) for v in sent)


def test_early_alerts_end_to_end_on_the_handlers() -> None:
    """Aggregate's messages fed to detect in order: the spike alerts from a partial, before its minute closes."""
    on = Settings(_env_file=None, allowed_lateness_seconds=0, early_firing=True, detector="ew_zscore")
    # a warmed series first (ew_zscore warms quickly), then the traffic's minutes after it
    d = Detector(on)
    for i in range(60):
        d.feed(dump_batch(KEY, 1000 + i, [Bucket(key=KEY, start=minute(i - 60), seconds=60, spend_usd=0.08,
                                                  requests=8)]))
    alerts: list[tuple[str, bool]] = []
    for value in aggregate(on, traffic()):
        for a in d.feed(_renumber(value)):
            alerts.append((a.status, isinstance(load_message(value), PartialBatch)))
    assert alerts[:1] == [("firing", True)] and ("firing", False) not in alerts


def _renumber(value: bytes) -> bytes:
    """Closed batches after the warm-up's (seq 1000..1059) keep their order: seq + 2000."""
    msg = load_message(value)
    if isinstance(msg, PartialBatch):
        return value
    return dump_batch(msg.key, msg.seq + 2000, msg.buckets, forget=msg.forget)


def test_a_rollup_partial_names_its_top_child_and_teaches_no_baseline() -> None:
    rollup = "team=a|feature=*|customer=*|model=*|environment=prod"
    kids = ("feature=f|customer=c|model=m", "feature=g|customer=c|model=m")

    def rb(i: int, spend: float, hot: float = 0.0) -> Bucket:
        return Bucket(key=rollup, start=minute(i), seconds=60, spend_usd=spend + hot, requests=16, records=16,
                      children={kids[0]: spend / 2 + hot, kids[1]: spend / 2})

    d = Detector()
    for i in range(150):
        d.feed(dump_batch(rollup, i + 1, [rb(i, 2 * warm_spend(i))]))
    before = decode(d.table[rollup]).get("children")
    [alert] = d.feed(dump_partial(rollup, rb(151, 2 * NORMAL, hot=20 * NORMAL)))
    assert alert.metric == "spend" and alert.contributors and alert.contributors[0].key == kids[0]
    after = decode(d.table[rollup]).get("children")
    assert (after.seq, after.at, after.baselines.means) == (before.seq, before.at, before.baselines.means)
