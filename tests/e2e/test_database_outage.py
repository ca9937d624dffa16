"""The database is down when the worker starts: writes wait and retry, nothing is lost."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, USAGE_TOPICS
from streams.harness.worker_process import WorkerProcess

pytestmark = pytest.mark.e2e


def test_dead_letter_waits_for_the_database_and_lands_once_it_is_back(tmp_path) -> None:
    db_dir = tmp_path / "not-yet"  # SQLite cannot open a file in a missing directory: "database down"
    database_url = f"sqlite:///{db_dir / 'store.db'}"
    log = tmp_path / "worker.log"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, log) as worker:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
            producer.send(USAGE_TOPICS["llm"], b"{broken").get(timeout=10)
            producer.close()
            deadline = time.monotonic() + 60
            while "database unavailable" not in log.read_text(errors="replace"):
                worker.check_alive()
                assert time.monotonic() < deadline, "the worker never reported the outage"
                time.sleep(0.2)
            db_dir.mkdir()  # the database comes back
            store = AlertStore(database_url)
            try:
                while not store.dead_letters():
                    worker.check_alive()
                    assert time.monotonic() < deadline + 60, "the dead letter never landed"
                    time.sleep(0.3)
                dead = store.dead_letters()
            finally:
                store.close()
    assert [d.original_bytes() for d in dead] == [b"{broken"]
    assert "invalid JSON" in dead[0].reason
