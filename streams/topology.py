"""The Faust app, its topics and its tables: declarations only (as in Faust's own examples).

Data flow (agents in :mod:`streams.agents`)::

    usage.llm|gpu|billing -> normalize -> costs (keyed by allocation key, each message with its origin)
                                      \\-> budget.spend (keyed by budget id: each message's spend per budget)
                                      \\-> gpu.samples, model.activity
    costs -> aggregate (table open_buckets) -> buckets (each message numbered per key: key, seq)
    buckets -> detect (table monitors) -> alerts
    budget.spend -> budgets (tables burn_trackers, clocks) -> alerts, guardrail.overruns
    alerts -> route_anomalies -> guardrail.anomalies (keyed by budget id) -> anomaly_overruns (reads
              burn_trackers, co-partitioned) -> guardrail.overruns
    guardrail.overruns -> decide_overruns (policy, store) -> guardrail.decisions
    gpu.samples -> zombies (gpu_trackers) -> alerts; model.activity -> pinned_models (model_activity) -> alerts
    alerts -> store_alerts; usage.deadletter -> store_dead_letters

Every worker punctuates the ``costs`` and ``budget.spend`` partitions with the clocks of the usage
partitions it owns (:mod:`streams.state.clocks`): buckets close on their own producers' event time.
"""

from __future__ import annotations

import faust

from streams.transport import WorkerTransport
from streams.settings import (ALERTS_TOPIC, ANOMALIES_TOPIC, BUCKETS_TOPIC, BUDGET_SPEND_TOPIC, COSTS_TOPIC,
                              DEADLETTER_TOPIC, DECISIONS_TOPIC, GPU_SAMPLES_TOPIC, MODEL_ACTIVITY_TOPIC,
                              OVERRUNS_TOPIC, USAGE_TOPICS, Settings)
from streams.state.clocks import EventClock, SourceProgress
from streams.state.tables import TypedTable
from streams.state.values import BudgetState, GpuState, ModelState, Sweep
from streams.state.windows import KeyWindows

settings = Settings()

app = faust.App(
    settings.app_id,
    broker=settings.broker or "kafka://127.0.0.1:9092",
    store=settings.table_store,
    topic_partitions=settings.partitions,
    web_port=settings.web_port,
    datadir=settings.data_dir,
    broker_session_timeout=10,
    broker_credentials=settings.faust_broker_credentials(),  # SASL/TLS for a secured cluster, else None
    value_serializer="raw",
    # batches of table writes (aggregate saves thousands of keys at once) and internal messages: larger
    # producer batches, gathered for a few ms, instead of 16 KB requests sent at once
    producer_max_batch_size=512 * 1024,
    producer_linger=0.005,
)
# changelog end offsets checked against a fetch (table recovery must read a changelog to its real end on every
# broker, the embedded one included): set before any topic is declared, as declaring one builds the transport
app.transport = WorkerTransport(app.conf.broker_consumer, app)


def _internal(name: str) -> faust.TopicT:
    return app.topic(name, key_type=str, key_serializer="raw", value_serializer="raw")


usage_topic = app.topic(*USAGE_TOPICS.values(), value_serializer="raw")
deadletter_topic = app.topic(DEADLETTER_TOPIC, value_serializer="raw")
costs_topic = _internal(COSTS_TOPIC)
buckets_topic = _internal(BUCKETS_TOPIC)
budget_spend_topic = _internal(BUDGET_SPEND_TOPIC)
gpu_samples_topic = _internal(GPU_SAMPLES_TOPIC)
model_activity_topic = _internal(MODEL_ACTIVITY_TOPIC)
alerts_topic = _internal(ALERTS_TOPIC)
overruns_topic = _internal(OVERRUNS_TOPIC)
decisions_topic = _internal(DECISIONS_TOPIC)
anomalies_topic = _internal(ANOMALIES_TOPIC)


def _table(name: str) -> faust.Table:
    return app.Table(name, value_type=bytes, partitions=settings.partitions)


# Values are codec bytes (streams.state.codec: versioned msgpack, no pickle), typed by TypedTable.
open_buckets = TypedTable(_table("open_buckets"), "open_buckets", KeyWindows)
monitors_raw = _table("monitors")  # SeriesState and ChildrenState (streams.agents.detect types each get)
burn_trackers = TypedTable(_table("burn_trackers"), "burn_trackers", BudgetState)
clocks = TypedTable(_table("clocks"), "clocks", EventClock)
gpu_trackers = TypedTable(_table("gpu_trackers"), "gpu_trackers", GpuState)
model_activity = TypedTable(_table("model_activity"), "model_activity", ModelState)
sweeps = TypedTable(_table("sweeps"), "sweeps", Sweep)

#: Worker-local (never a changelog): the usage partitions this worker reads, the producers on each and
#: how far it has read; the punctuation timer turns it into clocks for the downstream partitions.
progress = SourceProgress(idle_after=settings.idle_flush_seconds)
