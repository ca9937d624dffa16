"""Run one message's handler so that one bad message never stops a stream and nothing is lost.

- A broker or network error (a send that timed out, a leader moving) is retried with backoff,
  for as long as it lasts: dropping the message would lose its effect. Handlers send first and
  save state after, and every consumer drops repeats by origin, so a retried half-done message
  changes nothing twice.
- State that cannot be decoded (:class:`~streams.state.tables.StateQuarantined`) quarantines the
  key: the message goes to the dead-letter topic (replayable once the state is repaired), the key's
  state stays as it is and is counted; money is never reset to zero.
- Any other error is a message this agent cannot process: dead-lettered with the agent and error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError

from schemas.deadletter import DeadLetter
from streams.metrics import metrics
from streams.state.tables import StateQuarantined
from streams.topology import deadletter_topic

log = logging.getLogger("burnguard")

#: Originals above this are cut in the dead letter (base64 in JSON must stay under Kafka's 1 MB).
MAX_DEAD_LETTER_BYTES = 512 * 1024
#: Backoff bounds while the broker is unavailable.
RETRY_FIRST, RETRY_MAX = 0.5, 30.0


class Quarantine:
    """Worker-local count of keys whose state could not be used, by table (shown on ``/health``)."""

    def __init__(self) -> None:
        self.keys: dict[str, set[str]] = {}
        self.messages: Counter[str] = Counter()

    def add(self, table: str, key: str) -> bool:
        """Count one message held back for ``key``; True the first time this key is seen."""
        self.messages[table] += 1
        seen = self.keys.setdefault(table, set())
        if key in seen:
            return False
        seen.add(key)
        return True

    def summary(self) -> dict[str, dict[str, int]]:
        return {t: {"keys": len(k), "messages": self.messages[t]} for t, k in self.keys.items()}


quarantine = Quarantine()  # part of the worker, like the app itself (never persisted)


def is_transient(err: BaseException) -> bool:
    """An error that goes away by itself: the broker is unreachable or busy."""
    if isinstance(err, KafkaError):
        return bool(getattr(err, "retriable", False)) or type(err).__name__ in (
            "KafkaTimeoutError", "KafkaConnectionError", "RequestTimedOutError", "NodeNotReadyError")
    return isinstance(err, (asyncio.TimeoutError, ConnectionError))


async def dead_letter(raw: bytes, reason: str, topic: str, partition: int | None, offset: int | None,
                      index: int | None = None, key: bytes | str | None = None) -> None:
    if len(raw) > MAX_DEAD_LETTER_BYTES:
        reason += f" [original {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}, cut to {MAX_DEAD_LETTER_BYTES}]"
        raw = raw[:MAX_DEAD_LETTER_BYTES]
    dl = DeadLetter.from_bytes(raw, reason=reason, topic=topic, partition=partition, offset=offset, index=index,
                               key=key.encode() if isinstance(key, str) else key)
    log.warning("dead letter from %s[%s]@%s: %s", topic, partition, offset, reason)
    metrics.dead_letter(topic, reason)
    await retrying(lambda: deadletter_topic.send(value=dl.model_dump_json().encode()))


async def retrying(send: Callable[[], Awaitable[Any]]) -> Any:
    """Await ``send()``, retrying with backoff while the broker is unavailable."""
    delay = RETRY_FIRST
    while True:
        try:
            return await send()
        except Exception as err:  # noqa: BLE001 - only transient errors are retried
            if not is_transient(err):
                raise
            log.error("broker unavailable (%s); retrying in %.1fs", type(err).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


async def report_quarantine(q: StateQuarantined, agent: str) -> None:
    """Dead-letter a key's unusable state once (its bytes, table and reason), and count it."""
    new_key = quarantine.add(q.table, q.key)
    metrics.quarantined(q.table, new_key)
    if new_key:
        log.error("%s: %s; the key is quarantined (its messages go to the dead-letter topic)", agent, q)
        await dead_letter(q.data, f"state quarantined: {q}", topic=f"state:{q.table}", partition=None,
                          offset=None, key=q.key)


async def guarded(agent: str, event: Any, handle: Callable[[Any], Awaitable[None]],
                  retry_first: float = RETRY_FIRST) -> None:
    """Run ``handle(event)`` under the rules above."""
    msg = event.message
    delay = retry_first
    while True:
        try:
            await handle(event)
            return
        except StateQuarantined as q:
            await report_quarantine(q, agent)
            await dead_letter(event.value or b"", f"internal: {agent}: {q}; kept for replay", msg.topic,
                              msg.partition, msg.offset, key=msg.key)
            return
        except Exception as err:  # noqa: BLE001 - one bad message must not stop the stream
            if is_transient(err):
                log.error("%s: broker unavailable (%s) at %s[%s]@%s; retrying in %.1fs", agent, type(err).__name__,
                          msg.topic, msg.partition, msg.offset, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            log.exception("%s could not process %s[%s]@%s", agent, msg.topic, msg.partition, msg.offset)
            await dead_letter(event.value or b"", f"internal: {agent} could not process this message: {err!r}",
                              msg.topic, msg.partition, msg.offset, key=msg.key)
            return
