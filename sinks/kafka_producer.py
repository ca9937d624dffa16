"""Publish usage events to burnguard, batched into envelopes (kafka-python).

Services use :class:`UsageProducer`; ``burnguard publish`` is a thin CLI around it::

    with UsageProducer("127.0.0.1:9092") as p:
        p.send("llm", {"timestamp": "...", "model": "gpt-4o", "cost_usd": 0.01})
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer

from streams.settings import USAGE_TOPICS


class UsageProducer:
    """Buffers events per source; sends an envelope every ``batch_size`` events, or once the
    oldest buffered event has waited ``max_linger_s`` (a background flusher bounds the wait
    even when no more events come), and on flush/close.

    Envelopes are keyed by ``stream_key`` (default: this host and process), so one
    producer's events stay on one partition, in order: event-time windows downstream
    then see them in the order they happened. Thread-safe.
    """

    def __init__(self, bootstrap_servers: str, batch_size: int = 500, max_linger_s: float = 1.0,
                 stream_key: str | None = None, **kafka_config: Any) -> None:
        if batch_size < 1 or max_linger_s <= 0:
            raise ValueError("batch_size must be >= 1 and max_linger_s > 0")
        self.batch_size = batch_size
        self.max_linger_s = max_linger_s
        self.stream_key = (stream_key or f"{socket.gethostname()}-{os.getpid()}").encode()
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=20, acks="all", **kafka_config)
        self.failed_events = 0  # envelopes the broker did not take; flush() raises while any are unreported
        self.buffers: dict[str, list[Any]] = {source: [] for source in USAGE_TOPICS}
        self.oldest: dict[str, float] = {}
        self.sent_events = 0
        self.sent_messages = 0
        # reentrant: a future the client hands back already failed runs its errback (_failed) at once, in the
        # sending thread, which holds the lock
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_stale_forever, name="usage-producer-linger",
                                         daemon=True)
        self._flusher.start()

    def send(self, source: str, event: Any) -> None:
        if source not in self.buffers:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(USAGE_TOPICS)}")
        with self._lock:
            buf = self.buffers[source]
            if not buf:
                self.oldest[source] = time.monotonic()
            buf.append(event)
            if len(buf) >= self.batch_size or time.monotonic() - self.oldest[source] >= self.max_linger_s:
                self._send_envelope(source)

    def send_envelope(self, source: str, body: bytes, events: int) -> None:
        """Send ``body``, an envelope already encoded (a JSON array of ``events`` events), as one message, after
        what is buffered for ``source`` (so order is kept); counted, and its failure reported by :meth:`flush`,
        as the envelopes :meth:`send` makes are."""
        if source not in self.buffers:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(USAGE_TOPICS)}")
        with self._lock:
            self._send_envelope(source)
            try:
                future = self.producer.send(USAGE_TOPICS[source], body, key=self.stream_key)
            except Exception:
                self.failed_events += events
                raise
            future.add_errback(self._failed, events)
            self.sent_events += events
            self.sent_messages += 1

    def _send_envelope(self, source: str) -> None:  # caller holds the lock
        buf = self.buffers[source]
        if not buf:
            return
        self.buffers[source] = []  # cleared first: one envelope the client refuses must not wedge the rest
        self.oldest.pop(source, None)
        try:
            future = self.producer.send(USAGE_TOPICS[source], orjson.dumps(buf), key=self.stream_key)
        except Exception:
            self.failed_events += len(buf)
            raise
        future.add_errback(self._failed, len(buf))
        self.sent_events += len(buf)
        self.sent_messages += 1

    def _failed(self, n: int, err: Exception) -> None:
        with self._lock:
            self.failed_events += n

    def _flush_stale_forever(self) -> None:
        while not self._closed.wait(self.max_linger_s / 4):
            now = time.monotonic()
            with self._lock:
                for source, since in list(self.oldest.items()):
                    if now - since >= self.max_linger_s:
                        try:
                            self._send_envelope(source)
                        except Exception:  # counted in failed_events; flush() reports it
                            pass

    def flush(self, timeout: float | None = 30.0) -> None:
        """Send what is buffered and wait for the broker; raises if any envelope was not taken."""
        with self._lock:
            for source in self.buffers:
                self._send_envelope(source)
        self.producer.flush(timeout=timeout)
        with self._lock:
            failed, self.failed_events = self.failed_events, 0
        if failed:
            raise RuntimeError(f"{failed} event(s) were not accepted by the broker")

    def close(self, timeout: float | None = None) -> None:
        """Flush, then close the Kafka client (waiting at most ``timeout`` seconds for it)."""
        if self._closed.is_set():
            return
        self.flush()
        self._closed.set()
        self._flusher.join(timeout=5)
        self.producer.close(timeout=timeout)

    def abort(self) -> None:
        """Close without sending what is buffered (the broker is gone): returns promptly."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            for source in self.buffers:
                self.buffers[source] = []
            self.oldest.clear()
        self._flusher.join(timeout=5)
        self.producer.close(timeout=0)

    def __enter__(self) -> "UsageProducer":
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
