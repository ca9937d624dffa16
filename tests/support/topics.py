"""What the e2e tests read off the broker themselves: everything seen on a topic, whether a consumer group has
committed a topic to its end, and a changelog's final state per partition."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams.harness.topic_reader import TopicReader


class Topic:
    """Everything seen on a topic so far (raw values, in order), read from the beginning without a group."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.reader = TopicReader(bootstrap, topic)
        self.values: list[bytes] = []

    def poll(self) -> list[bytes]:
        """Every value seen so far, after reading what arrived since the last call."""
        self.values.extend(self.reader.poll(timeout_ms=200))
        return self.values

    def close(self) -> None:
        self.reader.close()


def consumed(bootstrap: str, group: str, topic: str) -> bool:
    """Whether consumer group ``group`` has committed every message on ``topic`` (an empty partition counts)."""
    consumer, admin = KafkaConsumer(bootstrap_servers=bootstrap), KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        committed = admin.list_group_offsets({group: parts}).get(group, {})
        return bool(parts) and all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp])
                                   for tp in parts)
    finally:
        consumer.close()
        admin.close()


def changelog_records(bootstrap: str, topic: str) -> dict[int, list[tuple[int, bytes, bytes | None]]]:
    """Per partition, every record of ``topic`` so far in offset order: (offset, key, value; ``None`` a
    deletion).

    Read to the end offsets, whole record batches at a time (the embedded broker's end offset is the last
    batch's base offset + 1, so the offsets are taken from the records, not from it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: dict[int, list[tuple[int, bytes, bytes | None]]] = {tp.partition: [] for tp in parts}
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for tp, records in consumer.poll(timeout_ms=500, max_records=10_000).items():
                out[tp.partition].extend((r.offset, r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


def changelog(bootstrap: str, topic: str) -> tuple[dict[int, dict[bytes, bytes | None]], dict[int, int]]:
    """Per partition: every key's last value on ``topic`` (``None``: deleted) and the highest offset."""
    last: dict[int, dict[bytes, bytes | None]] = {}
    top: dict[int, int] = {}
    for partition, records in changelog_records(bootstrap, topic).items():
        last[partition] = {}
        for offset, key, value in records:
            last[partition][key] = value
            top[partition] = max(top.get(partition, -1), offset)
    return last, top
