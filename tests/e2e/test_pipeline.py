"""End to end: kafka-python producer -> embedded broker -> Faust worker subprocess -> store.

No mocks: a real Tansu broker, a real worker process, a real SQLite database. The
expected alerts come from replaying the same events offline through the same code
(streams.offline), and independently from what was injected.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import orjson
import pytest

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.offline import replay
from streams.settings import ALL_TOPICS, USAGE_TOPICS, Settings
from streams.synthetic import Spike, SyntheticDay
from streams.worker_process import WorkerProcess, wait_for_alerts, wait_for_buckets

pytestmark = pytest.mark.e2e

SPIKED = "ads/copygen/gpt-4o"
SPIKE_MINUTE = 150
DETECTOR = "ew_zscore"  # pinned: this test is about the pipeline; detector quality is benchmarked


@pytest.fixture()
def broker():
    with EmbeddedBroker() as b:  # one per test: its topics and consumer group start empty
        create_topics(b.bootstrap, ALL_TOPICS, partitions=4)
        yield b


def test_spike_raises_exactly_the_predicted_alert_and_bad_input_is_dead_lettered(broker, tmp_path) -> None:
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=200,
                       spikes=(Spike(SPIKED, SPIKE_MINUTE, 10, 8.0),))
    events = list(day.events())
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    last_minute: dict[str, datetime] = {}
    for e in events:
        last_minute[str(AllocationKey(model=e["model"], **e["tags"]))] = \
            datetime.fromisoformat(e["timestamp"]).replace(second=0, microsecond=0)

    with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", detector=DETECTOR) as worker:
        with UsageProducer(broker.bootstrap, batch_size=400, stream_key="e2e") as producer:
            for i, e in enumerate(events):
                producer.send("llm", e)
                if i == 1000:  # one bad event inside an envelope of good ones
                    producer.send("llm", {**e, "cost_usd": -1.0, "request_id": "bad-cost"})
            producer.flush()
            # a message that is not JSON at all, on the same partition as the good ones
            producer.producer.send(USAGE_TOPICS["llm"], b"{not json", key=producer.stream_key).get(timeout=10)
        buckets = wait_for_buckets(worker, broker.bootstrap, last_minute, timeout=120)
        stored = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=60)

    # count in = count out: every valid event is in exactly one bucket
    assert sum(b.records for b in buckets) == len(events)
    assert sum(b.requests for b in buckets) == len(events)

    # the stream path agrees with the offline path on the same ordered input
    settings = Settings(_env_file=None, detector=DETECTOR)
    _, predicted = replay(events, settings)
    assert predicted, "the offline replay predicts no alert: the scenario is broken"
    got = {(a.series_key, a.metric, a.started_at, a.status) for a in stored}
    latest_status = {}
    for a in predicted:
        latest_status[(a.series_key, a.metric, a.started_at)] = a.status
    assert got == {(*k, s) for k, s in latest_status.items()}

    # and with what was injected: only the spiked key alerts, on cost per inference, at the spike
    spiked_key = next(k for k in last_minute if "team=ads|feature=copygen" in k)
    assert {a.series_key for a in stored} == {spiked_key}
    cpi = [a for a in stored if a.metric == "cost_per_inference"]
    assert len(cpi) == 1
    spike_start = day.start + timedelta(minutes=SPIKE_MINUTE)
    assert spike_start <= cpi[0].started_at <= spike_start + timedelta(minutes=2)
    assert cpi[0].observed > 3 * cpi[0].baseline

    # nothing lost: both bad inputs are dead letters with their reason and original bytes
    store = AlertStore(database_url)
    try:
        dead = store.dead_letters()
    finally:
        store.close()
    reasons = sorted(d.reason for d in dead)
    assert len(dead) == 2, reasons
    assert any("invalid JSON" in r for r in reasons)
    assert any("cost" in r for r in reasons)
    bad_event = next(d for d in dead if "cost" in d.reason)
    assert orjson.loads(bad_event.original_bytes())["request_id"] == "bad-cost"
    assert bad_event.index is not None
    assert any(d.original_bytes() == b"{not json" for d in dead)
