"""Zombie GPUs through the real broker: an idle notebook alerts once, priced in $/h; a busy job does not;
an idle model server whose model gets no gateway requests alerts as a pinned idle model, one whose
model does get requests (equally idle GPUs) does not."""

from __future__ import annotations

import json
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
from streams.harness.worker_process import WorkerProcess, wait_for_alerts
from tests.support.waits import until

pytestmark = pytest.mark.e2e
PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def sample(template: dict, t: datetime, pod: str, namespace: str, uuid: str, util: float, **labels: str) -> dict:
    s = orjson.loads(orjson.dumps(template))
    s["timestamp"] = t.isoformat()
    s["labels"].update({"pod": pod, "namespace": namespace, "UUID": uuid, **labels})
    s["metrics"]["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] = util
    s["metrics"]["DCGM_FI_DEV_GPU_UTIL"] = round(100 * util)
    return s


def gateway_call(t: datetime, model: str) -> dict:
    return {"format": "native", "timestamp": t.isoformat(), "model": model, "input_tokens": 800, "output_tokens": 120,
            "tags": {"team": "assistant", "feature": "chat"}}


def test_idle_notebook_and_pinned_idle_model_alert_once_priced_busy_and_requested_do_not(tmp_path) -> None:
    template = orjson.loads((PAYLOADS / "dcgm.json").read_bytes())
    interval = template.get("interval_s", 30)
    t0 = (datetime.now(timezone.utc) - timedelta(hours=4)).replace(second=0, microsecond=0)
    samples = []
    for i in range(int(140 * 60 / interval)):  # 140 minutes of telemetry
        t = t0 + timedelta(seconds=i * interval)
        busy_notebook = 0.6 if t < t0 + timedelta(minutes=20) else 0.0
        samples.append(sample(template, t, "nb-alice-0", "jupyter-alice", "GPU-nb", busy_notebook))
        samples.append(sample(template, t, "train-llm-0", "ml-training", "GPU-train", 0.85))
        # two model servers, both with idle GPUs from minute 5 (sparse traffic barely moves the engine)
        warm = 0.5 if t < t0 + timedelta(minutes=5) else 0.0
        samples.append(sample(template, t, "llama-server-0", "inference", "GPU-llama", warm,
                              served_model="meta-llama/Llama-3.1-8B-Instruct"))
        samples.append(sample(template, t, "qwen-server-0", "inference", "GPU-qwen", warm,
                              served_model="Qwen/Qwen2.5-7B-Instruct"))
    # gateway traffic: llama gets requests until minute 14 and then none; qwen one every 10 minutes throughout
    calls = [gateway_call(t0 + timedelta(minutes=m, seconds=20), "meta-llama/Llama-3.1-8B-Instruct") for m in range(15)]
    calls += [gateway_call(t0 + timedelta(minutes=m, seconds=40), "hosted_vllm/Qwen/Qwen2.5-7B-Instruct")
              for m in range(0, 140, 10)]
    records, rejects = Normalizer().parse("gpu", orjson.dumps(samples))
    assert not rejects and len(records) == len(samples)
    nb = [r for r in records if r.pod == "nb-alice-0"]
    expected_usd_per_hour = nb[-1].cost_usd / nb[-1].gpu_seconds * 3600
    assert expected_usd_per_hour > 0

    database_url = f"sqlite:///{tmp_path / 'gpu.db'}"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log") as worker:
            port = worker.env["BURNGUARD_WEB_PORT"]

            def health() -> dict:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
                        return json.loads(resp.read())
                except OSError:  # the web server is not up yet
                    return {"tables": {}}

            # The join evaluates a server's status against the requests seen so far: replay the
            # gateway first (a live gateway is seconds ahead of a 2-hour idle window anyway). It may
            # run hours ahead of the GPUs: a server is gone only when its own statuses stop arriving.
            with UsageProducer(broker.bootstrap, stream_key="gateway") as producer:
                for c in calls:
                    producer.send("llm", c)
            until("gateway requests per model", lambda: health()["tables"].get("model_activity") == 2, 90,
                  worker.check_alive, detail=lambda: health()["tables"])
            with UsageProducer(broker.bootstrap, stream_key="dcgm-exporter") as producer:
                for s in samples:
                    producer.send("gpu", s)
            store = AlertStore(database_url)
            try:
                until("the zombie-GPU alerts",
                      lambda: len([a for a in store.alerts() if a.detector == "zombie_gpu"]) >= 2, 90,
                      worker.check_alive, detail=lambda: [(a.detector, a.series_key) for a in store.alerts()])
                # and the store holds every alert the worker sent (none still on its way)
                stored = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=60)
                alerts = sorted((a for a in stored if a.detector == "zombie_gpu"), key=lambda a: a.metric)
            finally:
                store.close()
            final = health()
    assert final["status"] == "ok" and final["tables"]["gpu_trackers"] == 4  # notebook, job, two model servers
    assert final["tables"]["model_activity"] == 2  # llama and qwen, each joined with its server
    assert all(final["agents"].values()) and final["assigned_partitions"] > 0
    assert {"streams.agents.gpu.zombies", "streams.agents.gpu.pinned_models"} <= set(final["agents"])

    assert [(a.series_key, a.metric, a.status) for a in alerts] == [
        ("gpu=jupyter-alice/nb-alice-0", "zombie_gpu.idle_notebook", "firing"),
        ("gpu=inference/llama-server-0", "zombie_gpu.pinned_idle_model", "firing")]
    nb_alert, pinned = alerts
    assert nb_alert.started_at == t0 + timedelta(minutes=80)  # idle from minute 20, rule after 60 idle minutes
    assert nb_alert.observed == pytest.approx(expected_usd_per_hour, rel=1e-3)
    assert "idle" in (nb_alert.summary or "")
    # GPUs idle from minute 5, but the last gateway request (minute 14) held it until 15 + 120
    assert pinned.started_at == t0 + timedelta(minutes=135)
    assert pinned.observed == pytest.approx(expected_usd_per_hour, rel=1e-3)  # one H100, $/h
    assert "meta-llama/llama-3.1-8b-instruct" in (pinned.summary or "")
