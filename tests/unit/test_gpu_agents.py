"""The pinned_models agent's handler and its tick sweep, on in-memory tables (no broker, no monkeypatching)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
import pytest

from streams.agents.gpu import MODEL_SWEEP_SECONDS, TICK, PinnedModels
from streams.app import app
from streams.state.tables import TypedTable
from streams.state.values import ModelState, Sweep

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
MIN = 60.0


@pytest.fixture
def agent():
    """The handler with dicts for its tables, a settable wall clock, and the alerts it sends."""
    table, sent, clock = {}, [], SimpleNamespace(now=T0)
    models = TypedTable(table, "model_activity", ModelState)

    async def send(alert):
        sent.append(alert)

    handler = PinnedModels(models, TypedTable({}, "sweeps", Sweep), send, clock=lambda: clock.now, started=T0 - 3600)

    def deliver(key: str, partition: int, doc: dict | None = None) -> None:
        value = orjson.dumps(doc) if doc is not None else b"[]"
        asyncio.run(handler.handle(key, value, partition))

    return SimpleNamespace(table=table, models=models, sent=sent, clock=clock, deliver=deliver)


def status_doc(resource: str, minute: float, idle_from: float | None) -> dict:
    return {"status": {"resource": resource, "t": T0 + minute * MIN, "util_now": 0.0 if idle_from is not None else 0.7,
                       "idle_since": T0 + idle_from * MIN if idle_from is not None else None, "gpus": 1,
                       "usd_per_gpu_hour": 4.0}}


def test_the_gpu_agents_register_on_the_app() -> None:
    assert {"streams.agents.gpu.zombies", "streams.agents.gpu.pinned_models"} <= set(app.agents)


def test_tick_resolves_a_deleted_pods_incident_and_forgets_idle_models(agent) -> None:
    agent.deliver("gpt-4o", 1, {"o": ["usage.llm/0", 1], "requests": [[int(T0), 5]]})  # hosted: no server
    agent.deliver("llama", 1, status_doc("inference/llama-0", 130, idle_from=5))  # fires (start 125)
    agent.deliver("qwen", 2, status_doc("inference/qwen-0", 10, idle_from=None))  # another partition
    assert [(a.status, a.series_key, a.started_at) for a in agent.sent] == [
        ("firing", "gpu=inference/llama-0", datetime.fromtimestamp(T0 + 125 * MIN, tz=timezone.utc))]
    assert agent.models.get("llama").partition == 1  # the key's partition is kept for the sweep

    agent.clock.now = T0 + 3599
    agent.deliver(TICK, 1)
    assert len(agent.sent) == 1 and set(agent.table) == {"gpt-4o", "llama", "qwen"}  # nothing is gone yet

    agent.clock.now = T0 + 3600
    agent.deliver(TICK, 1)  # within MODEL_SWEEP_SECONDS of the last sweep of partition 1: skipped
    assert len(agent.sent) == 1
    agent.clock.now = T0 + 3600 + MODEL_SWEEP_SECONDS
    agent.deliver(TICK, 1)
    resolved = agent.sent[1:]
    assert [(a.status, a.series_key, a.metric, a.started_at) for a in resolved] == [
        ("resolved", "gpu=inference/llama-0", "zombie_gpu.pinned_idle_model",
         datetime.fromtimestamp(T0 + 125 * MIN, tz=timezone.utc))]  # the same fingerprint as the firing one
    assert "no longer sampled" in (resolved[0].summary or "")
    assert set(agent.table) == {"gpt-4o", "qwen"}  # llama has nothing left; qwen is partition 2's to sweep

    agent.clock.now = T0 + 2 * 3600 + 60  # gpt-4o's last request (minute 0, arrived at T0) is 2 h old
    agent.deliver(TICK, 1)
    assert set(agent.table) == {"qwen"}
    agent.deliver(TICK, 2)
    assert agent.table == {} and len(agent.sent) == 2  # qwen's server was not firing: forgotten quietly


def test_a_redelivered_request_message_is_skipped_and_the_state_stays_small(agent) -> None:
    for minute in range(241):
        agent.deliver("llama", 0, {"o": ["usage.llm/3", 100 + minute], "requests": [[int(T0 + minute * MIN), 9]]})
    before = agent.table["llama"]
    agent.deliver("llama", 0, {"o": ["usage.llm/3", 340], "requests": [[int(T0 + 500 * MIN), 1]]})
    assert agent.table["llama"] == before  # offset 340 was applied already
    assert len(before) < 512


def test_a_gateway_model_named_like_the_tick_is_a_model(agent) -> None:
    agent.deliver(TICK, 1, {"o": ["usage.llm/0", 1], "requests": [[int(T0), 5]]})
    assert TICK in agent.table  # its requests were counted, not taken for a sweep
