"""End to end: kafka-python producer -> embedded broker -> Faust worker subprocess -> store.

No mocks: a real Tansu broker, a real worker process, a real SQLite database. The
expected alerts come from replaying the same events offline through the same code
(streams.harness.offline), and independently from what was injected.
"""

from __future__ import annotations

from datetime import date, timedelta

import orjson
import pytest

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.offline import replay
from streams.settings import ALL_TOPICS, USAGE_TOPICS, Settings
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets

pytestmark = pytest.mark.e2e

SPIKED = "ads/copygen/gpt-4o"
SPIKE_MINUTE = 330  # after enough history for a seasonal baseline (warm-up is benchmarked separately)
from detectors.registry import DEFAULT_DETECTOR  # noqa: E402


@pytest.fixture()
def broker():
    with EmbeddedBroker() as b:  # one per test: its topics and consumer group start empty
        create_topics(b.bootstrap, ALL_TOPICS, partitions=4)
        yield b


@pytest.mark.parametrize("detector", sorted({"ew_zscore", DEFAULT_DETECTOR}))
def test_spike_raises_exactly_the_predicted_alert_and_bad_input_is_dead_lettered(broker, tmp_path, detector) -> None:
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=400,
                       spikes=(Spike(SPIKED, SPIKE_MINUTE, 10, 8.0),))
    events = list(day.events())
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    rollups = Settings(_env_file=None).rollups
    last_minute = last_minutes(events, rollups)
    full_keys = {str(AllocationKey(model=e["model"], **e["tags"])) for e in events}

    with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", detector=detector) as worker:
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
    assert sum(b.records for b in buckets if b.key in full_keys) == len(events)
    assert sum(b.requests for b in buckets if b.key in full_keys) == len(events)
    # every event counts once more per roll-up level
    assert sum(b.requests for b in buckets if b.key not in full_keys) == len(events) * len(rollups)

    # the stream path agrees with the offline path on the same ordered input
    settings = Settings(_env_file=None, detector=detector)
    _, predicted = replay(events, settings)
    assert predicted, "the offline replay predicts no alert: the scenario is broken"
    got = {(a.series_key, a.metric, a.started_at, a.status) for a in stored}
    latest_status = {}
    for a in predicted:
        latest_status[(a.series_key, a.metric, a.started_at)] = a.status
    assert got == {(*k, s) for k, s in latest_status.items()}

    # and with what was injected: only the spiked key and its team roll-up alert, on cost per
    # inference, at the spike; the roll-up names the spiked child as its top contributor
    spiked_key = next(k for k in full_keys if "team=ads|feature=copygen" in k)
    team_rollup = "team=ads|feature=*|customer=*|model=*|environment=production"
    org_rollup = "team=*|feature=*|customer=*|model=*|environment=production"
    assert {spiked_key, team_rollup} <= {a.series_key for a in stored} <= {spiked_key, team_rollup, org_rollup}
    for a in stored:
        if a.series_key == org_rollup and a.status == "firing" and a.contributors:
            assert a.contributors[0].key.startswith("team=ads|feature=copygen")
    spike_start = day.start + timedelta(minutes=SPIKE_MINUTE)
    for key in (spiked_key, team_rollup):
        [cpi] = [a for a in stored if a.metric == "cost_per_inference" and a.series_key == key]
        assert spike_start <= cpi.started_at <= spike_start + timedelta(minutes=2)
        assert cpi.observed > 3 * cpi.baseline
    [rollup_alert] = [a for a in stored if a.series_key == team_rollup and a.metric == "cost_per_inference"]
    assert rollup_alert.contributors[0].key == "feature=copygen|customer=internal|model=gpt-4o"
    assert rollup_alert.contributors[0].impact_usd > 0

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
