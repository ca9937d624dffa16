"""Zombie GPUs through the real broker: an idle notebook alerts once, priced in $/h; a busy job does not."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from schemas.ingest import Normalizer
from sinks.kafka_producer import UsageProducer
from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS
from streams.worker_process import WorkerProcess

pytestmark = pytest.mark.e2e
PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def sample(template: dict, t: datetime, pod: str, namespace: str, uuid: str, util: float) -> dict:
    s = orjson.loads(orjson.dumps(template))
    s["timestamp"] = t.isoformat()
    s["labels"].update({"pod": pod, "namespace": namespace, "UUID": uuid})
    s["metrics"]["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] = util
    s["metrics"]["DCGM_FI_DEV_GPU_UTIL"] = round(100 * util)
    return s


def test_idle_notebook_alerts_once_priced_and_busy_job_does_not(tmp_path) -> None:
    template = orjson.loads((PAYLOADS / "dcgm.json").read_bytes())
    interval = template.get("interval_s", 30)
    t0 = (datetime.now(timezone.utc) - timedelta(hours=4)).replace(second=0, microsecond=0)
    samples = []
    for i in range(int(110 * 60 / interval)):  # 110 minutes of telemetry
        t = t0 + timedelta(seconds=i * interval)
        busy_notebook = 0.6 if t < t0 + timedelta(minutes=20) else 0.0
        samples.append(sample(template, t, "nb-alice-0", "jupyter-alice", "GPU-nb", busy_notebook))
        samples.append(sample(template, t, "train-llm-0", "ml-training", "GPU-train", 0.85))
    records, rejects = Normalizer().parse("gpu", orjson.dumps(samples))
    assert not rejects and len(records) == len(samples)
    nb = [r for r in records if r.pod == "nb-alice-0"]
    expected_usd_per_hour = nb[-1].cost_usd / nb[-1].gpu_seconds * 3600
    assert expected_usd_per_hour > 0

    database_url = f"sqlite:///{tmp_path / 'gpu.db'}"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log") as worker:
            with UsageProducer(broker.bootstrap, stream_key="dcgm-exporter") as producer:
                for s in samples:
                    producer.send("gpu", s)
            port = worker.env["BURNGUARD_WEB_PORT"]
            store = AlertStore(database_url)
            try:
                deadline = time.monotonic() + 90
                while not store.alerts() and time.monotonic() < deadline:
                    worker.check_alive()
                    time.sleep(0.3)
                time.sleep(3)  # anything else would have arrived by now
                alerts = [a for a in store.alerts() if a.detector == "zombie_gpu"]
            finally:
                store.close()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
                health = json.loads(resp.read())
    assert health["status"] == "ok" and health["tables"]["gpu_trackers"] == 2  # the notebook and the job
    assert all(health["agents"].values()) and health["assigned_partitions"] > 0

    assert len(alerts) == 1, [(a.series_key, a.metric) for a in alerts]
    [a] = alerts
    assert (a.series_key, a.metric, a.status) == ("gpu=jupyter-alice/nb-alice-0", "zombie_gpu.idle_notebook", "firing")
    assert a.started_at == t0 + timedelta(minutes=80)  # idle from minute 20, rule after 60 idle minutes
    assert a.observed == pytest.approx(expected_usd_per_hour, rel=1e-3)
    assert "idle" in (a.summary or "")
