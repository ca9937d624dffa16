"""Publish usage events to burnguard, batched into envelopes (kafka-python).

Services use :class:`UsageProducer`; ``burnguard publish`` is a thin CLI around it::

    with UsageProducer("127.0.0.1:9092") as p:
        p.send("llm", {"timestamp": "...", "model": "gpt-4o", "cost_usd": 0.01})
"""

from __future__ import annotations

import os
import socket
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer

from streams.settings import USAGE_TOPICS


class UsageProducer:
    """Buffers events per source and sends an envelope every ``batch_size`` events or on flush.

    Envelopes are keyed by ``stream_key`` (default: this host and process), so one
    producer's events stay on one partition, in order: event-time windows downstream
    then see them in the order they happened. kafka-python's ``linger_ms`` bounds how
    long a sent envelope waits in the client.
    """

    def __init__(self, bootstrap_servers: str, batch_size: int = 500, linger_ms: int = 50,
                 stream_key: str | None = None, **kafka_config: Any) -> None:
        self.batch_size = batch_size
        self.stream_key = (stream_key or f"{socket.gethostname()}-{os.getpid()}").encode()
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=linger_ms,
                                      compression_type=None, acks=1, **kafka_config)
        self.buffers: dict[str, list[Any]] = {source: [] for source in USAGE_TOPICS}
        self.sent_events = 0
        self.sent_messages = 0

    def send(self, source: str, event: Any) -> None:
        if source not in self.buffers:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(USAGE_TOPICS)}")
        buf = self.buffers[source]
        buf.append(event)
        if len(buf) >= self.batch_size:
            self._send_envelope(source)

    def _send_envelope(self, source: str) -> None:
        buf = self.buffers[source]
        if not buf:
            return
        self.producer.send(USAGE_TOPICS[source], orjson.dumps(buf), key=self.stream_key)
        self.sent_events += len(buf)
        self.sent_messages += 1
        self.buffers[source] = []

    def flush(self, timeout: float | None = 30.0) -> None:
        for source in self.buffers:
            self._send_envelope(source)
        self.producer.flush(timeout=timeout)

    def close(self) -> None:
        self.flush()
        self.producer.close()

    def __enter__(self) -> "UsageProducer":
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
