"""The pinned-idle-model join: gateway requests per served model x serving GPUs' idle status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from detectors.gpu_tracker import GpuTracker
from detectors.pinned_model import ModelActivity, ServingStatus, model_key
from detectors.zombie_gpu import ZombieRules
from schemas.ingest import Normalizer
from streams.state.codec import decode, encode
from streams.state.values import ModelState
from streams.gpu import gpu_samples_by_resource, new_gpu_tracker, observe_sample, requests_by_model, serving_status_doc

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
MIN = 60.0


def status(resource: str, minute: float, idle_from: float | None, gpus: int = 2, rate: float = 4.0) -> ServingStatus:
    return ServingStatus(resource, T0 + minute * MIN, 0.0 if idle_from is not None else 0.8,
                         T0 + idle_from * MIN if idle_from is not None else None, gpus, rate)


def minutes(transitions) -> list[tuple[str, str, float, float]]:
    return [(s, a.resource, a.usd_per_hour, (at.timestamp() - T0) / MIN) for s, a, at in transitions]


def test_model_key_matches_label_and_gateway_spellings() -> None:
    assert model_key("Qwen/Qwen2.5-7B-Instruct") == model_key(" qwen/qwen2.5-7b-instruct") == "qwen/qwen2.5-7b-instruct"
    assert model_key("hosted_vllm/Qwen/Qwen2.5-7B-Instruct") == "qwen/qwen2.5-7b-instruct"
    assert model_key("openai/") == "openai/"  # a bare prefix is not stripped to nothing
    assert [model_key(v) for v in ("", "  ", "unknown", "UNKNOWN", None, 3, ["x"])] == [None] * 7


def test_idle_server_without_requests_fires_once_at_the_known_start_priced_per_hour() -> None:
    m = ModelActivity("llama")
    assert m.update_server(status("srv/a", 60, idle_from=5)) == []  # idle 55 min: not yet
    assert m.update_server(status("srv/a", 124, idle_from=5)) == []  # 119 min
    fired = m.update_server(status("srv/a", 140, idle_from=5))
    assert minutes(fired) == [("firing", "srv/a", 8.0, 125.0)]  # idle_since + 120 min, 2 GPUs x $4/h
    assert "llama" in fired[0][1].detail
    assert m.update_server(status("srv/a", 150, idle_from=5)) == []  # one alert per incident
    assert minutes(m.update_server(status("srv/a", 151, idle_from=None))) == [("resolved", "srv/a", 0.0, 125.0)]


def test_incident_starts_when_the_request_window_empties() -> None:
    m = ModelActivity("llama")
    assert m.add_requests([(T0 + 14 * MIN + 30, 3)]) == []  # last request in minute 14, ends at 15
    assert m.update_server(status("srv/a", 134, idle_from=5)) == []  # idle 129 min, but a request 119 min ago
    assert minutes(m.update_server(status("srv/a", 136, idle_from=5))) == [("firing", "srv/a", 8.0, 135.0)]


def test_a_model_with_requests_in_the_window_never_fires_and_late_requests_resolve() -> None:
    busy, quiet = ModelActivity("qwen"), ModelActivity("llama")
    for minute in range(0, 200, 10):  # a request every 10 minutes on qwen only
        busy.add_requests([(T0 + minute * MIN, 1)])
    for minute in range(0, 200, 5):
        assert busy.update_server(status("srv/q", minute, idle_from=0)) == []
    assert [s for s, *_ in quiet.update_server(status("srv/l", 199, idle_from=0))] == ["firing"]
    # a request inside the window that arrives after the status (another partition lagged) resolves it
    resolved = quiet.add_requests([(T0 + 150 * MIN, 1)])
    assert [(s, a.detail) for s, a, _ in resolved] == [("resolved", "requests for the model again")]
    assert busy.last_request_end == T0 + 191 * MIN  # minute 190 is the last with requests


def test_status_is_a_snapshot_older_ones_are_ignored() -> None:
    m = ModelActivity("llama")
    m.update_server(status("srv/a", 140, idle_from=5))
    assert m.update_server(status("srv/a", 130, idle_from=None)) == []  # out of order: still firing
    assert m.update_server(status("srv/a", 140, idle_from=5)) == []  # redelivered: nothing new
    assert list(m.firing) == ["srv/a"]


def test_requests_far_ahead_of_the_statuses_never_make_a_server_gone() -> None:
    """Requests at minutes 5 and 400; a server idle from minute 6, a status every 5 minutes up to 295."""
    statuses = [status("srv/a", minute, idle_from=6) for minute in range(0, 300, 5)]
    gateway_first = ModelActivity("llama")
    assert gateway_first.add_requests([(T0 + 5 * MIN, 1), (T0 + 400 * MIN, 1)]) == []
    assert [t for s in statuses for t in gateway_first.update_server(s)] == []  # the minute-400 request counts
    assert gateway_first.servers == {"srv/a": statuses[-1]}  # kept, not dropped as "no longer sampled"

    in_order = ModelActivity("llama")
    in_order.add_requests([(T0 + 5 * MIN, 1)])
    fired = [t for s in statuses for t in in_order.update_server(s)]
    assert minutes(fired) == [("firing", "srv/a", 8.0, 126.0)]
    # the gateway's next request is 105 minutes past the newest status: the server is not gone, it is in use
    resolved = in_order.add_requests([(T0 + 400 * MIN, 1)])
    assert [(s, a.resource, a.detail) for s, a, _ in resolved] == [("resolved", "srv/a", "requests for the model again")]
    assert list(in_order.servers) == ["srv/a"]


def test_each_server_is_gone_by_its_own_statuses_not_by_another_servers() -> None:
    """Two pods of one model whose GPU partitions are 62 minutes apart: the lagging one fires once and
    stays firing (no resolve and re-fire with the same start, which the store would keep as resolved)."""
    m = ModelActivity("llama")
    out = m.update_server(status("srv/a", 130, idle_from=5), now=T0)
    for minute in range(135, 200, 5):
        out += m.update_server(status("srv/b", minute + 62, idle_from=None), now=T0 + minute)
        out += m.update_server(status("srv/a", minute, idle_from=5), now=T0 + minute)
    assert minutes(out) == [("firing", "srv/a", 8.0, 125.0)]
    assert sorted(m.servers) == ["srv/a", "srv/b"] and list(m.firing) == ["srv/a"]
    assert m.sweep(now=T0 + 200) == []  # both still arriving


def test_sweep_resolves_a_server_whose_statuses_stopped_arriving_and_forgets_it() -> None:
    m = ModelActivity("llama")
    arrived = T0 + 500 * MIN  # a replay: the statuses of minutes 140 and 150 arrive later, at `arrived`
    m.update_server(status("srv/a", 140, idle_from=5), now=arrived)
    m.update_server(status("srv/b", 150, idle_from=None), now=arrived + 1800)
    assert m.sweep(now=arrived + 3599) == []  # srv/a's last status arrived 59:59 ago
    gone = m.sweep(now=arrived + 3600)
    assert [(s, a.resource, a.detail) for s, a, _ in gone] == [("resolved", "srv/a", "no longer sampled")]
    assert minutes(gone)[0][3] == 125.0  # the incident it fired (same fingerprint)
    assert list(m.servers) == ["srv/b"] and m.firing == {} and list(m.arrived) == ["srv/b"]
    # an arrival before the worker started counts as at its start (its backlog is not read yet)
    assert m.sweep(now=arrived + 1800 + 3600, started=arrived + 3600) == [] and list(m.servers) == ["srv/b"]
    assert m.sweep(now=arrived + 1800 + 3600) == [] and m.servers == {}  # srv/b was not firing: forgotten quietly


def test_an_older_status_arriving_still_shows_the_server_is_sampled() -> None:
    m = ModelActivity("llama")
    m.update_server(status("srv/a", 140, idle_from=5), now=T0)
    m.update_server(status("srv/a", 130, idle_from=5), now=T0 + 3000)  # out of order: ignored as a snapshot
    assert m.servers["srv/a"].t == T0 + 140 * MIN
    assert m.sweep(now=T0 + 3600) == [] and list(m.firing) == ["srv/a"]


def test_a_model_expires_only_without_servers_and_without_requests_in_the_window() -> None:
    window = 120 * MIN
    hosted = ModelActivity("gpt-4o")  # a hosted model: requests, never a server
    hosted.add_requests([(T0, 3)], now=T0 + 30)
    assert not hosted.expired(now=T0 + 60 + window - 1)
    assert hosted.expired(now=T0 + 60 + window)
    replayed = ModelActivity("gpt-4o")  # old requests replayed: kept for the window after they arrived
    replayed.add_requests([(T0, 3)], now=T0 + 10 * window)
    assert not replayed.expired(now=T0 + 10 * window + 1) and replayed.expired(now=T0 + 11 * window)
    assert not replayed.expired(now=T0 + 11 * window, started=T0 + 10.5 * window)  # a restart waits for the backlog
    served = ModelActivity("llama")
    served.update_server(status("srv/a", 0, idle_from=0), now=T0)
    assert not served.expired(now=T0 + 10 * window)  # its server is held until a sweep forgets it
    served.sweep(now=T0 + 10 * window)
    assert served.expired(now=T0 + 10 * window)


def test_window_follows_the_rules_and_only_the_last_request_end_is_kept() -> None:
    m = ModelActivity("llama", ZombieRules(pinned_idle_min=30))
    m.add_requests([(T0, 5), (T0 + 30, 2), (T0 + MIN, 0)])
    assert m.last_request_end == T0 + MIN
    assert m.add_requests([(T0 - 10 * MIN, 4)]) == [] and m.last_request_end == T0 + MIN  # older: no change
    assert minutes(m.update_server(status("srv/a", 40, idle_from=0, gpus=1))) == [("firing", "srv/a", 4.0, 31.0)]
    assert [s for s, *_ in m.add_requests([(T0 + 10 * MIN, 1)])] == ["resolved"]  # ends at 11 > 40 - 30
    assert m.last_request_end == T0 + 11 * MIN


def test_state_round_trips_through_the_state_codec() -> None:
    m = ModelActivity("llama")
    m.add_requests([(T0, 2)])
    m.update_server(status("srv/a", 200, idle_from=5))
    state = decode(encode(ModelState(1, m, {"usage.llm/0": 7})))
    sources, back = state.applied, state.activity
    assert sources == {"usage.llm/0": 7} and back.firing == m.firing and back.servers == m.servers
    assert back.update_server(status("srv/a", 210, idle_from=5)) == []  # still the same incident


def test_a_busy_model_with_firing_servers_stays_small_in_the_table() -> None:
    """What the model_activity table holds per key: ModelState(partition, activity, source offsets)."""
    m = ModelActivity("meta-llama/llama-3.1-8b-instruct")
    sources = {f"usage.llm/{p}": 123_456_789 for p in range(4)}
    for minute in range(241):  # a request every minute for 4 hours
        m.add_requests([(T0 + minute * MIN, 17)])
    for i in range(3):
        m.update_server(status(f"inference/vllm-llama-{i}", 400 + i, idle_from=5 if i else None))
    assert sorted(m.firing) == ["inference/vllm-llama-1", "inference/vllm-llama-2"]
    size = len(encode(ModelState(3, m, sources)))
    assert size < 1024, size


def _dcgm(t: datetime, pod: str, util: float, **labels: str) -> dict:
    return {"timestamp": t.isoformat(), "interval_s": 30,
            "labels": {"modelName": "NVIDIA H100 80GB HBM3", "UUID": f"GPU-{pod}", "namespace": "serving",
                       "pod": pod, **labels},
            "metrics": {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": util}}


def test_dcgm_label_to_serving_status_and_gateway_counts() -> None:
    t = datetime.fromtimestamp(T0, tz=timezone.utc)
    samples = [_dcgm(t + timedelta(seconds=30 * i), "vllm-llama-0", 0.0, served_model="Meta-Llama/Llama-3.1-8B")
               for i in range(4)]
    samples += [_dcgm(t, "worker-0", 0.0, namespace="ml"), _dcgm(t, "kserve-0", 0.0, **{"serving.kserve.io/inferenceservice": "m2"})]
    records, rejects = Normalizer().parse("gpu", orjson.dumps(samples))
    assert not rejects
    assert [r.served_model for r in records[3:]] == ["Meta-Llama/Llama-3.1-8B", None, "m2"]
    by_resource = gpu_samples_by_resource(records)
    docs = {}
    for resource, ss in by_resource.items():
        tracker = new_gpu_tracker(resource, ss[0])
        for s in ss:
            observe_sample(tracker, s)
        docs[resource] = (tracker.kind, serving_status_doc(tracker, ss))
    kind, (model, doc) = docs["serving/vllm-llama-0"]
    assert (kind, model) == ("serving", "meta-llama/llama-3.1-8b")
    assert doc["status"]["idle_since"] == T0 and doc["status"]["t"] == T0 + 90 and doc["status"]["gpus"] == 1
    assert docs["ml/worker-0"] == ("job", None)  # no served model: the rule cannot apply
    assert docs["serving/kserve-0"][1][0] == "m2"

    calls = [{"format": "native", "timestamp": T0 + s, "model": m, "input_tokens": 10, "output_tokens": 1}
             for s, m in ((0, "meta-llama/Llama-3.1-8B"), (61, "hosted_vllm/meta-llama/llama-3.1-8b"), (5, "gpt-4o"))]
    llm, rejects = Normalizer().parse("llm", orjson.dumps(calls))
    assert not rejects
    assert requests_by_model(llm) == {"meta-llama/llama-3.1-8b": [[int(T0), 1], [int(T0) + 60, 1]],
                                      "gpt-4o": [[int(T0), 1]]}


def test_serving_status_of_an_empty_tracker_is_none() -> None:
    assert GpuTracker("x", "serving").serving_status() is None
    with pytest.raises(TypeError):
        ServingStatus("x", 0.0)  # type: ignore[call-arg]
