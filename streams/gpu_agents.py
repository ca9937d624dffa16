"""The GPU-side agents of the Faust app: zombie GPUs per allocation, and the pinned-idle-model join.

Declared against :data:`streams.app.app` with its topics and tables; ``streams.app`` imports
this module at its end, so ``burnguard worker`` and ``faust -A streams.app worker`` register
these agents like the ones declared there.

State of ``model_activity`` (per served model, :class:`~detectors.pinned_model.ModelActivity`):
``(partition, newest source offsets, activity)``. The leader's ``tick_models`` timer punctuates every
``model.activity`` partition; at most every :data:`MODEL_SWEEP_SECONDS` the punctuation sweeps
that partition's models in wall time: a server none of whose statuses arrived for an hour is
resolved ("no longer sampled": its pod was deleted, so nothing else would resolve it), and a
model with no servers whose last request is older than the rule's window is deleted.
"""

from __future__ import annotations

import asyncio
import time

import faust
import orjson

from detectors.pinned_model import ModelActivity
from streams.app import (_TICK, WORKER_STARTED, _get, _guarded, _key, _put, _send_alert, app, gpu_samples_topic,
                         gpu_trackers, model_activity, model_activity_topic, settings, watermarks)
from streams.delivery import already_applied
from streams.gpu import new_gpu_tracker, observe_sample, serving_status, serving_status_doc, zombie_alert

#: How often one ``model.activity`` partition's models are swept (tick_models punctuates 4x as often).
MODEL_SWEEP_SECONDS = 60.0


@app.timer(interval=MODEL_SWEEP_SECONDS / 4, on_leader=True)
async def tick_models() -> None:
    """Punctuate every model.activity partition, so servers that stopped being sampled resolve and idle
    models are forgotten. Its own timer, slower than the costs tick: a sweep is due only every
    MODEL_SWEEP_SECONDS, and punctuating every few seconds only loaded the producer."""
    for partition in range(settings.partitions):
        await model_activity_topic.send(key=_TICK.encode(), value=b"[]", partition=partition)


@app.agent(gpu_samples_topic)
async def zombies(stream: faust.StreamT) -> None:
    """Track each GPU allocation from its samples; alert on zombie GPUs, priced in $/h wasted."""
    async for event in stream.events():
        await _guarded("zombies", event, _zombies_one)


async def _zombies_one(event: faust.EventT) -> None:
    resource = _key(event)
    doc = orjson.loads(event.value)
    samples = doc["samples"]
    sources, tracker = _get(gpu_trackers, resource) or ({}, new_gpu_tracker(resource, samples[0]))
    if already_applied(sources, doc["src"], doc["off"]):
        return  # redelivered (this message, or normalize after a crash)
    alerts = [zombie_alert(resource, status, za, since)
              for sample in samples for status, za, since in observe_sample(tracker, sample)]
    _put(gpu_trackers, resource, (sources, tracker))
    for alert in alerts:
        await _send_alert(alert)
    if (serving := serving_status_doc(tracker, samples)) is not None:
        model, status = serving
        await model_activity_topic.send(key=model.encode(), value=orjson.dumps(status))


@app.agent(model_activity_topic)
async def pinned_models(stream: faust.StreamT) -> None:
    """Join gateway requests and serving GPUs per served model; alert on pinned idle models, priced in $/h."""
    async for event in stream.events():
        await _guarded("pinned_models", event, _pinned_one)


async def _pinned_one(event: faust.EventT) -> None:
    model, partition = _key(event), event.message.partition
    if model == _TICK and event.value == b"[]":  # (a gateway model named __tick__ sends a JSON object)
        now, swept_key = time.time(), f"model.activity/{partition}"  # wall time of the partition's last sweep
        if now - _get(watermarks, swept_key, 0.0) >= MODEL_SWEEP_SECONDS:
            await sweep_models(partition, now)
            _put(watermarks, swept_key, now)
        return
    doc = orjson.loads(event.value)
    *_, sources, activity = _get(model_activity, model) or (partition, {}, ModelActivity(model))
    now = time.time()
    if "requests" in doc:
        if already_applied(sources, doc["src"], doc["off"]):
            return  # redelivered (this message, or normalize after a crash)
        transitions = activity.add_requests(doc["requests"], now)
    else:  # a status is a snapshot: applying it again (redelivery) changes nothing
        transitions = activity.update_server(serving_status(doc["status"]), now)
    _put(model_activity, model, (partition, sources, activity))
    for status, za, since in transitions:
        await _send_alert(zombie_alert(za.resource, status, za, since))


async def sweep_models(partition: int, now: float) -> None:
    """Resolve servers gone for an hour (wall time) and delete models left with nothing to judge,
    among the models of ``partition`` (each key is changed by its own partition's tick, so its
    changelog stays co-partitioned). Arrivals before this worker started count as at its start."""
    for n, key in enumerate(list(model_activity.keys())):
        if n % 1000 == 999:
            await asyncio.sleep(0)  # a long sweep must not starve the consumer's heartbeats
        stored = _get(model_activity, key)
        if stored is None or len(stored) != 3 or stored[0] != partition:
            continue
        _, sources, activity = stored
        transitions = activity.sweep(now, started=WORKER_STARTED)
        if activity.expired(now, started=WORKER_STARTED):
            del model_activity[key]
        elif transitions:
            _put(model_activity, key, (partition, sources, activity))
        for status, za, since in transitions:
            await _send_alert(zombie_alert(za.resource, status, za, since))
