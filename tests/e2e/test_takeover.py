"""A worker that takes over usage partitions already drained still closes the minutes of their keys.

The first worker reads and commits every usage message but closes no minute by idleness (its idle time is an
hour), then is killed (``kill -9``). The second worker has nothing left to read on those partitions: it must
still see them as caught up (from the group's committed offsets) and let their producer go idle, or no key fed
from them could ever close again. Checked against the test's own sums of what it published.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.synthetic import SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_buckets
from streams.settings import ALL_TOPICS, USAGE_TOPICS, Settings
from tests.support.waits import until
from tests.support.worker_web import scrape

pytestmark = pytest.mark.e2e


def test_a_worker_taking_over_drained_partitions_closes_their_keys(tmp_path) -> None:
    events = list(SyntheticDay(date.today() - timedelta(days=2), minutes=20).events())
    rollups = Settings(_env_file=None).rollups
    database_url = f"sqlite:///{tmp_path / 'takeover.db'}"
    env = {"detector": "ew_zscore", "app_id": "bg-takeover"}

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        worker = WorkerProcess(broker.url, database_url, tmp_path / "worker1.log", idle_flush_seconds="3600",
                               **env).start()
        try:
            with UsageProducer(broker.bootstrap, batch_size=200, stream_key="gw") as producer:
                for e in events:
                    producer.send("llm", e)
            port = int(worker.env["BURNGUARD_WEB_PORT"])

            def committed_all() -> bool:
                try:
                    lag = scrape(port).get("burnguard_consumer_lag", {})
                except AssertionError:  # not serving yet
                    return False
                usage = [v for k, v in lag.items() if dict(k)["topic"] == USAGE_TOPICS["llm"]]
                return len(usage) == 4 and not any(usage)

            until("every usage message read and committed by the first worker", committed_all, 120,
                  worker.check_alive)
            worker.process.kill()  # nothing closed by idleness yet: every key's last minute is still open
            worker.process.wait(timeout=10)
        finally:
            worker.stop()
        with WorkerProcess(broker.url, database_url, tmp_path / "worker2.log", **env) as worker2:
            buckets = wait_for_buckets(worker2, broker.bootstrap, last_minutes(events, rollups), timeout=120)

    published: dict[str, float] = defaultdict(float)
    for e in events:
        published[str(AllocationKey(model=e["model"], **e["tags"]))] += e["cost_usd"]
    stored: dict[str, float] = defaultdict(float)
    for b in buckets:
        if b.key in published:
            stored[b.key] += b.spend_usd
    assert stored == pytest.approx(published)
