"""Detector state survives a worker restart (Faust tables recovered from their changelogs).

The spike comes 5 buckets after the restart; a detector that re-entered warm-up (30 buckets)
could not alert on it, so an alert proves the state was recovered, not rebuilt.
"""

from __future__ import annotations

import pytest

from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS
from tests.support.restart import RestartDay, assert_alerted_on_the_spike, run_worker

pytestmark = pytest.mark.e2e


def test_monitors_survive_restart_and_alert_without_new_warmup(tmp_path) -> None:
    split = RestartDay.make()
    database_url = f"sqlite:///{tmp_path / 'restart.db'}"
    settings = {"detector": "ew_zscore", "app_id": "bg-restart"}

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        assert run_worker(broker.url, broker.bootstrap, database_url, tmp_path / "worker1.log", settings,
                          split.before, "restart") == []
        # worker 1 stopped (SIGTERM): a new process must recover tables from the changelogs
        alerts = run_worker(broker.url, broker.bootstrap, database_url, tmp_path / "worker2.log", settings,
                            split.after, "restart")

    assert_alerted_on_the_spike(alerts, split.day)
