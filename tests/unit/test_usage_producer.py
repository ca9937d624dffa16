"""``UsageProducer`` when the client hands back an envelope's future already failed (kafka-python does so when
waiting for the topic's metadata ends in a broker error): the failure is counted and reported by ``flush``, never a
deadlock on the producer's own lock (the errback runs at once, in the sending thread). No broker: a stand-in client.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka.errors import TopicAuthorizationFailedError
from kafka.future import Future

import sinks.kafka_producer as kp


class FailingClient:
    """What the producer needs of ``KafkaProducer``; every send's future has already failed."""

    def __init__(self, **_: Any) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Future:
        self.sent.append(value)
        return Future().failure(TopicAuthorizationFailedError(topic))

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def in_thread(fn: Any, *args: Any) -> None:
    """Run ``fn`` and fail (rather than hang) if it does not return within 5 s."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            error.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), f"{fn.__name__} did not return: deadlock"
    if error:
        raise error[0]


@pytest.mark.parametrize("how", ["send", "send_envelope"])
def test_an_envelope_failed_at_once_is_reported_not_a_deadlock(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(kp, "KafkaProducer", FailingClient)
    p = kp.UsageProducer("nowhere:9092", batch_size=2, stream_key="k")
    if how == "send":
        in_thread(p.send, "llm", {"a": 1})
        in_thread(p.send, "llm", {"a": 2})  # the second fills the envelope: sent
    else:
        in_thread(p.send_envelope, "llm", b'[{"a":1},{"a":2}]', 2)
    assert p.producer.sent and p.failed_events == 2
    with pytest.raises(RuntimeError, match="2 event"):
        in_thread(p.flush)
    p.abort()
