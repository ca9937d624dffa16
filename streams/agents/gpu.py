"""GPU-side agents: zombie GPUs per allocation, and the pinned-idle-model join per served model.

``model_activity`` holds a :class:`~streams.state.values.ModelState` per served model. The leader's
``tick_models`` timer punctuates every ``model.activity`` partition; at most every
:data:`MODEL_SWEEP_SECONDS` the punctuation sweeps that partition's models in wall time: a server
none of whose statuses arrived for an hour is resolved ("no longer sampled": its pod was deleted,
so nothing else would resolve it), and a model with no servers whose last request is older than the
rule's window is deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import faust
import orjson

from detectors.pinned_model import ModelActivity
from streams.agents.detect import SendAlert, send_alert
from streams.agents.guard import guarded, report_quarantine, retrying
from streams.gpu import new_gpu_tracker, observe_sample, serving_status, serving_status_doc, zombie_alert
from streams.state.applied import already_applied
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import GpuState, ModelState, Sweep
from streams.topology import (app, gpu_samples_topic, gpu_trackers, model_activity, model_activity_topic, settings,
                              sweeps)

#: How often one ``model.activity`` partition's models are swept (tick_models punctuates 4x as often).
MODEL_SWEEP_SECONDS = 60.0
TICK = "__tick__"
WORKER_STARTED = time.time()  # this process's start, set once at import


class Zombies:
    def __init__(self, trackers: TypedTable[GpuState], send: SendAlert,
                 send_status: Callable[[str, bytes], object], ttl: float, max_gpus: int = 64) -> None:
        self.trackers, self.send, self.send_status, self.ttl = trackers, send, send_status, ttl
        self.max_gpus = max_gpus

    async def handle(self, resource: str, value: bytes, partition: int = 0, timestamp: float = 0.0) -> None:
        if resource == TICK and value == b"[]":
            await self.sweep(partition, timestamp)
            return
        doc = orjson.loads(value)
        samples = doc["samples"]
        state = self.trackers.get(resource) or GpuState(new_gpu_tracker(resource, samples[0], self.max_gpus))
        state.tracker.max_gpus = self.max_gpus  # the setting may have changed since the state was written
        src, offset = doc["o"]
        if already_applied(state.applied, src, offset):
            return  # redelivered (this message, or normalize after a crash)
        alerts = [zombie_alert(resource, status, za, since)
                  for sample in samples for status, za, since in observe_sample(state.tracker, sample)]
        for alert in alerts:
            await self.send(alert)
        if (serving := serving_status_doc(state.tracker, samples)) is not None:
            model, status = serving
            await self.send_status(model, orjson.dumps(status))
        state.partition, state.touched = partition, timestamp
        self.trackers.put(resource, state)

    async def sweep(self, partition: int, now: float) -> None:
        """Forget this partition's GPU allocations not sampled for ``ttl`` seconds (deleted pods)."""
        for n, key in enumerate(self.trackers.keys()):
            if n % 1000 == 999:
                await asyncio.sleep(0)
            try:
                state = self.trackers.get(key)
            except StateQuarantined as q:
                await report_quarantine(q, "zombies")
                continue
            if state is not None and state.partition == partition and now - state.touched >= self.ttl:
                self.trackers.delete(key)


class PinnedModels:
    def __init__(self, models: TypedTable[ModelState], sweeps: TypedTable[Sweep], send: SendAlert,
                 clock: Callable[[], float] = time.time, started: float = WORKER_STARTED) -> None:
        self.models, self.sweeps, self.send, self.clock, self.started = models, sweeps, send, clock, started

    async def handle(self, model: str, value: bytes, partition: int) -> None:
        if model == TICK and value == b"[]":  # (a gateway model named __tick__ sends a JSON object)
            now, key = self.clock(), f"model.activity/{partition}"
            last = self.sweeps.get(key)
            if last is None or now - last.at >= MODEL_SWEEP_SECONDS:
                await self.sweep(partition, now)
                self.sweeps.put(key, Sweep(now))
            return
        doc = orjson.loads(value)
        state = self.models.get(model) or ModelState(partition, ModelActivity(model))
        now = self.clock()
        if "requests" in doc:
            src, offset = doc["o"]
            if already_applied(state.applied, src, offset):
                return  # redelivered (this message, or normalize after a crash)
            transitions = state.activity.add_requests(doc["requests"], now)
        else:  # a status is a snapshot: applying it again (redelivery) changes nothing
            transitions = state.activity.update_server(serving_status(doc["status"]), now)
        state.partition = partition
        await self._send(transitions)
        self.models.put(model, state)

    async def sweep(self, partition: int, now: float) -> None:
        """Resolve servers gone for an hour (wall time) and delete models left with nothing to judge, among
        the models of ``partition``. Arrivals before this worker started count as at its start."""
        for n, key in enumerate(self.models.keys()):
            if n % 1000 == 999:
                await asyncio.sleep(0)  # a long sweep must not starve the consumer's heartbeats
            try:
                state = self.models.get(key)
            except StateQuarantined as q:
                await report_quarantine(q, "pinned_models")
                continue
            if state is None or state.partition != partition:
                continue
            transitions = state.activity.sweep(now, started=self.started)
            await self._send(transitions)
            if state.activity.expired(now, started=self.started):
                self.models.delete(key)
            elif transitions:
                self.models.put(key, state)

    async def _send(self, transitions: list) -> None:
        for status, za, since in transitions:
            await self.send(zombie_alert(za.resource, status, za, since))


async def _send_status(model: str, value: bytes) -> None:
    await retrying(lambda: model_activity_topic.send(key=model.encode(), value=value))


@app.timer(interval=MODEL_SWEEP_SECONDS / 4, on_leader=True)
async def tick_models() -> None:
    """Punctuate every model.activity and gpu.samples partition, so servers that stopped being sampled
    resolve, idle models are forgotten, and GPU allocations not sampled for key_ttl_seconds go."""
    for partition in range(settings.partitions):
        await retrying(lambda p=partition: model_activity_topic.send(key=TICK.encode(), value=b"[]", partition=p))
        await retrying(lambda p=partition: gpu_samples_topic.send(key=TICK.encode(), value=b"[]", partition=p))


@app.agent(gpu_samples_topic)
async def zombies(stream: faust.StreamT) -> None:
    """Track each GPU allocation from its samples; alert on zombie GPUs, priced in $/h wasted."""
    handler = Zombies(gpu_trackers, send_alert, _send_status, settings.key_ttl_seconds,
                      settings.max_gpus_per_allocation)

    async def one(event: faust.EventT) -> None:
        key = event.key.decode() if isinstance(event.key, bytes) else event.key
        await handler.handle(key, event.value, event.message.partition, event.message.timestamp)

    async for event in stream.events():
        await guarded("zombies", event, one)


@app.agent(model_activity_topic)
async def pinned_models(stream: faust.StreamT) -> None:
    """Join gateway requests and serving GPUs per served model; alert on pinned idle models, priced in $/h."""
    handler = PinnedModels(model_activity, sweeps, send_alert)

    async def one(event: faust.EventT) -> None:
        key = event.key.decode() if isinstance(event.key, bytes) else event.key
        await handler.handle(key, event.value, event.message.partition)

    async for event in stream.events():
        await guarded("pinned_models", event, one)

