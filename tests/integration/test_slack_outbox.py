"""The Slack outbox with the real slack-sdk WebClient against the local emulator (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from sinks.slack.delivery import SlackDelivery, make_client
from sinks.migrations import upgrade
from sinks.slack.outbox import SlackOutbox
from tests.support.slack_emulator import SlackEmulator


@pytest.fixture
def outbox_url(database_url: str) -> str:
    upgrade(database_url)  # the schema is Alembic's (migration 0004)
    return database_url


@pytest.fixture
def slack() -> SlackEmulator:
    with SlackEmulator() as emu:
        yield emu


def enqueue_incidents(box: SlackOutbox, n: int) -> dict[str, str]:
    """n incidents over two channels: a post, an evidence reply and two updates each; key -> text."""
    texts = {}
    for i in range(n):
        inc, channel = f"inc-{i}", ("#oncall-a", "#oncall-b")[i % 2]
        for key, kind, text in ((f"{inc}:post", "post", f"incident {i}"),
                                (f"{inc}:reply:open:2", "reply", f"evidence {i}"),
                                (f"{inc}:update:3", "update", f"incident {i} (3)"),
                                (f"{inc}:update:4", "update", f"incident {i} (4)")):
            assert box.enqueue(key, inc, kind, channel, {"text": text})
            texts[key] = text
    return texts


def posted_keys(slack: SlackEmulator) -> Counter:
    return Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_key")
                   for m in slack.messages())


def test_outage_then_rate_limit_delivers_every_message_exactly_once(outbox_url: str, slack: SlackEmulator) -> None:
    box = SlackOutbox(outbox_url)
    enqueue_incidents(box, 4)
    # the re-sent post of the same key must be refused by the outbox itself
    assert not box.enqueue("inc-0:post", "inc-0", "post", "#oncall-a", {"text": "again"})
    slack.fail_for(1.5)  # Slack is down first ...
    slack.ratelimit(2, retry_after=1)  # ... then rate-limits the next two calls once it is back
    delivery = SlackDelivery(box, make_client("xoxb-test", slack.base_url), min_interval=0.3,
                             backoff_base=0.1, backoff_cap=0.4)
    assert delivery.drain(timeout=60)
    # exactly once: one message per post and per reply, none for updates (they edit in place)
    assert posted_keys(slack) == Counter({f"inc-{i}:{k}": 1 for i in range(4) for k in ("post", "reply:open:2")})
    for i in range(4):
        [parent] = [m for m in slack.messages() if m["text"].startswith(f"incident {i}")]
        assert parent["text"] == f"incident {i} (4)"  # the newest update; update 3 was coalesced
        [reply] = [m for m in slack.messages() if m["text"] == f"evidence {i}"]
        assert reply["thread_ts"] == parent["ts"]
    statuses = Counter(c.status for c in slack.calls)
    assert statuses[503] >= 1 and statuses[429] == 2
    # Retry-After honoured: nothing was called within 1 s after the last 429
    calls = slack.calls
    last_429 = max(i for i, c in enumerate(calls) if c.status == 429)
    assert calls[last_429 + 1].at - calls[last_429].at >= 0.95
    # per-channel pacing: successive successful calls to one channel are >= min_interval apart
    for chan in ("C_ONCALL_A", "C_ONCALL_B"):
        times = [c.at for c in calls if c.status == 200 and c.method.startswith("chat.")
                 and SlackEmulator._channel_id(str(c.params.get("channel"))) == chan]
        assert all(b - a >= 0.29 for a, b in zip(times, times[1:])), times
    assert box.counts() == {"done": 12, "superseded": 4}


def test_restart_with_pending_and_in_flight_rows_loses_none_and_doubles_none(outbox_url: str,
                                                                          slack: SlackEmulator) -> None:
    box = SlackOutbox(outbox_url)
    enqueue_incidents(box, 3)
    client = make_client("xoxb-test", slack.base_url)
    # worker 1 claims inc-0's post and its call reaches Slack, then the worker dies before marking it done
    [first] = [it for it in box.due(now=box.items()[0].created_at.timestamp() + 1) if it.key == "inc-0:post"]
    assert box.claim(first.id, now=first.created_at.timestamp(), lease=0.5)
    client.chat_postMessage(channel=first.channel, text=first.payload["text"],
                            metadata={"event_type": "burnguard_incident",
                                      "event_payload": {"outbox_key": first.key, "incident_id": first.incident_id}})
    box.close()
    # worker 2 starts on the same database: takes the stale claim over after its lease, finds the message
    box2 = SlackOutbox(outbox_url)
    delivery = SlackDelivery(box2, client, min_interval=0.05, backoff_base=0.1, lease=0.5)
    assert delivery.drain(timeout=30)
    assert posted_keys(slack) == Counter({f"inc-{i}:{k}": 1 for i in range(3) for k in ("post", "reply:open:2")})
    assert len(slack.calls_of("conversations.history")) == 1  # only the row tried before is checked
    assert box2.thread("inc-0")[1] == next(m["ts"] for m in slack.messages() if m["text"].startswith("incident 0"))


def test_two_delivery_loops_on_one_outbox_never_send_a_row_twice(outbox_url: str, slack: SlackEmulator) -> None:
    box = SlackOutbox(outbox_url)
    enqueue_incidents(box, 6)
    loops = [SlackDelivery(SlackOutbox(outbox_url), make_client("xoxb-test", slack.base_url), min_interval=0.05)
             for _ in range(2)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda d=d: results.append(d.drain(timeout=30))) for d in loops]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert results == [True, True]
    assert set(posted_keys(slack).values()) == {1} and len(posted_keys(slack)) == 12


def test_a_refused_call_is_failed_not_retried(outbox_url: str, slack: SlackEmulator) -> None:
    box = SlackOutbox(outbox_url)
    box.enqueue("inc-x:post", "inc-x", "post", "", {"text": "to nowhere"})  # no channel: channel_not_found
    delivery = SlackDelivery(box, make_client("xoxb-test", slack.base_url))
    assert delivery.drain(timeout=10)
    [item] = box.items()
    assert (item.status, item.error) == ("failed", "channel_not_found")
    assert len(slack.calls_of("chat.postMessage")) == 1
