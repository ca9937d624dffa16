"""Read a topic from the beginning without a consumer group (kafka-python, manual assignment).

Used by the demo and tests to watch what the worker emitted. No group on purpose:
kafka-python's group coordination does not work against the embedded broker.
"""

from __future__ import annotations

from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition


class TopicReader:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", consumer_timeout_ms=200)
        parts = self.consumer.partitions_for_topic(topic) or set()
        self.partitions = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)

    def poll(self, timeout_ms: int = 200) -> Iterator[bytes]:
        """Values that arrived since the last call."""
        for records in self.consumer.poll(timeout_ms=timeout_ms, max_records=10_000).values():
            for record in records:
                yield record.value

    def close(self) -> None:
        self.consumer.close()
