"""The pinned_models agent's handler and its tick sweep, on an in-memory table (no broker)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
import pytest

from streams import gpu_agents, state_codec
from streams.app import _TICK, app

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
MIN = 60.0


class Table(dict):
    name = "model_activity"


@pytest.fixture
def agent(monkeypatch):
    """The handler with a dict for its table, a settable wall clock, and the alerts it sends."""
    table, sent, clock = Table(), [], SimpleNamespace(now=T0)
    monkeypatch.setattr(gpu_agents, "model_activity", table)
    monkeypatch.setattr(gpu_agents, "time", SimpleNamespace(time=lambda: clock.now))
    monkeypatch.setattr(gpu_agents, "WORKER_STARTED", T0 - 3600)
    monkeypatch.setattr(gpu_agents, "watermarks", Table())

    async def send(alert):
        sent.append(alert)

    monkeypatch.setattr(gpu_agents, "_send_alert", send)
    offsets = iter(range(10**6))

    def deliver(key: str, partition: int, doc: dict | None = None) -> None:
        value = orjson.dumps(doc) if doc is not None else b"[]"
        event = SimpleNamespace(key=key.encode(), value=value,
                                message=SimpleNamespace(topic="model.activity", partition=partition, offset=next(offsets)))
        asyncio.run(gpu_agents._pinned_one(event))

    return SimpleNamespace(table=table, sent=sent, clock=clock, deliver=deliver)


def status_doc(resource: str, minute: float, idle_from: float | None) -> dict:
    return {"status": {"resource": resource, "t": T0 + minute * MIN, "util_now": 0.0 if idle_from is not None else 0.7,
                       "idle_since": T0 + idle_from * MIN if idle_from is not None else None, "gpus": 1,
                       "usd_per_gpu_hour": 4.0}}


def test_the_gpu_agents_register_on_the_app() -> None:
    assert {"streams.gpu_agents.zombies", "streams.gpu_agents.pinned_models"} <= set(app.agents)


def test_tick_resolves_a_deleted_pods_incident_and_forgets_idle_models(agent) -> None:
    agent.deliver("gpt-4o", 1, {"src": "usage.llm/0", "off": 1, "requests": [[int(T0), 5]]})  # hosted: no server
    agent.deliver("llama", 1, status_doc("inference/llama-0", 130, idle_from=5))  # fires (start 125)
    agent.deliver("qwen", 2, status_doc("inference/qwen-0", 10, idle_from=None))  # another partition
    assert [(a.status, a.series_key, a.started_at) for a in agent.sent] == [
        ("firing", "gpu=inference/llama-0", datetime.fromtimestamp(T0 + 125 * MIN, tz=timezone.utc))]
    assert state_codec.loads(agent.table["llama"])[0] == 1  # the key's partition is kept for the sweep

    agent.clock.now = T0 + 3599
    agent.deliver(_TICK, 1)
    assert len(agent.sent) == 1 and set(agent.table) == {"gpt-4o", "llama", "qwen"}  # nothing is gone yet

    agent.clock.now = T0 + 3600
    agent.deliver(_TICK, 1)  # within MODEL_SWEEP_SECONDS of the last sweep of partition 1: skipped
    assert len(agent.sent) == 1
    agent.clock.now = T0 + 3600 + gpu_agents.MODEL_SWEEP_SECONDS
    agent.deliver(_TICK, 1)
    resolved = agent.sent[1:]
    assert [(a.status, a.series_key, a.metric, a.started_at) for a in resolved] == [
        ("resolved", "gpu=inference/llama-0", "zombie_gpu.pinned_idle_model",
         datetime.fromtimestamp(T0 + 125 * MIN, tz=timezone.utc))]  # the same fingerprint as the firing one
    assert "no longer sampled" in (resolved[0].summary or "")
    assert set(agent.table) == {"gpt-4o", "qwen"}  # llama has nothing left; qwen is partition 2's to sweep

    agent.clock.now = T0 + 2 * 3600 + 60  # gpt-4o's last request (minute 0, arrived at T0) is 2 h old
    agent.deliver(_TICK, 1)
    assert set(agent.table) == {"qwen"}
    agent.deliver(_TICK, 2)
    assert agent.table == {} and len(agent.sent) == 2  # qwen's server was not firing: forgotten quietly


def test_a_redelivered_request_message_is_skipped_and_the_state_stays_small(agent) -> None:
    for minute in range(241):
        agent.deliver("llama", 0, {"src": "usage.llm/3", "off": 100 + minute, "requests": [[int(T0 + minute * MIN), 9]]})
    before = agent.table["llama"]
    agent.deliver("llama", 0, {"src": "usage.llm/3", "off": 340, "requests": [[int(T0 + 500 * MIN), 1]]})
    assert agent.table["llama"] == before  # offset 340 was applied already
    assert len(before) < 512


def test_a_gateway_model_named_like_the_tick_is_a_model(agent) -> None:
    agent.deliver(_TICK, 1, {"src": "usage.llm/0", "off": 1, "requests": [[int(T0), 5]]})
    assert _TICK in agent.table  # its requests were counted, not taken for a sweep
