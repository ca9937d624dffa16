"""The delivery loop: send the outbox's rows with slack-sdk's ``WebClient``, exactly once.

- ``429 ratelimited``: the row waits ``Retry-After`` seconds, and so does every other call.
- An outage (connection refused, timeout, HTTP 5xx, ``internal_error``): exponential backoff
  (``backoff_base`` doubling to ``backoff_cap``), nothing else is tried meanwhile.
- At most one call per ``min_interval`` (1 s, Slack's posting limit) per channel.
- A row tried before (a worker died mid-call, or the call timed out) is *reconciled* first:
  posts and replies carry message metadata with the row's key, so ``conversations.history``
  / ``conversations.replies`` tell whether the earlier attempt landed; if it did, its ``ts`` is
  recorded instead of posting again. (Needs ``channels:history``; route to channel ids, not
  names, for this check to find the channel.)
- Updates of one incident are coalesced: only the newest pending one is sent.
- Other Slack errors (``channel_not_found``, ``invalid_blocks``...) mark the row failed, logged.

The client is built with ``retry_handlers=[]``: the outbox, not the client, decides retries.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sinks.slack.outbox import OutboxItem, SlackOutbox
from sinks.slack.uploads import find_upload, send_upload

log = logging.getLogger("burnguard.slack")

METADATA_TYPE = "burnguard_incident"
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "ratelimited", "team_added_to_org"})
NETWORK_ERRORS = (URLError, OSError, TimeoutError, socket.timeout, http.client.HTTPException)


def make_client(token: str, base_url: str | None = None, timeout: int = 10) -> WebClient:
    """A ``WebClient`` whose retries are the outbox's (``base_url`` from BURNGUARD_SLACK_API_URL)."""
    return WebClient(token=token, base_url=base_url or WebClient.BASE_URL, timeout=timeout, retry_handlers=[])


class SlackDelivery:
    def __init__(self, outbox: SlackOutbox, client: WebClient, *, min_interval: float = 1.0,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0, lease: float = 30.0, idle: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.outbox, self.client = outbox, client
        self.min_interval, self.backoff_base, self.backoff_cap = min_interval, backoff_base, backoff_cap
        self.lease, self.idle, self.clock = lease, idle, clock
        self.next_ok: dict[str, float] = {}  # channel id -> earliest time of its next call
        self.channel_ids: dict[str, str] = {}  # channel name -> id, learnt from posts
        self.paused_until = 0.0
        self.sent = 0

    # -- one pass --------------------------------------------------------------------------------
    def step(self) -> float:
        """Send what is due now; return how long to wait before the next pass."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        items = self.outbox.due(now, self.lease)
        newest_update: dict[str, int] = {}
        for it in items:
            if it.kind == "update":
                newest_update[it.incident_id] = max(newest_update.get(it.incident_id, 0), it.id)
        waits = [self.idle]
        for it in items:
            if it.kind == "update" and newest_update[it.incident_id] != it.id:
                self.outbox.supersede(it.id)
                continue
            thread = self.outbox.thread(it.incident_id) if it.kind != "post" else None
            if it.kind != "post" and thread is None:
                continue  # waits for its incident's first message
            channel = thread[0] if thread else self.channel_ids.get(it.channel, it.channel)
            ready = self.next_ok.get(channel, 0.0)
            if ready > now:
                waits.append(ready - now)
                continue
            if not self.outbox.claim(it.id, now, self.lease):
                continue
            wait, actual = self._deliver(it, thread)
            if wait is not None:
                return wait  # rate-limited or an outage: nothing else now
            now = self.clock()
            if actual and actual != channel:  # a post by channel name answers with the channel's id
                self.channel_ids[it.channel] = channel = actual
            self.next_ok[channel] = now + self.min_interval
            waits.append(self.min_interval)
        return max(min(waits), 0.0)

    def _deliver(self, it: OutboxItem, thread: tuple[str, str] | None) -> tuple[float | None, str | None]:
        """Send one claimed row: (pause, None) on a rate limit or outage, else (None, channel id)."""
        try:
            found = self._reconcile(it, thread) if it.attempts > 0 and it.kind != "update" else None
            ts, chan = found if found is not None else self._send(it, thread)
        except SlackApiError as err:
            resp = err.response
            status, code = resp.status_code, resp.get("error") if isinstance(resp.data, dict) else None
            if status == 429 or code == "ratelimited":
                wait = float(resp.headers.get("Retry-After") or resp.headers.get("retry-after") or 1)
                log.warning("Slack rate-limited %s; waiting %.0fs (Retry-After)", it.key, wait)
                return self._pause(it, wait, "ratelimited"), None
            if status >= 500 or code in TRANSIENT_ERRORS:
                return self._pause(it, self._backoff(it), f"HTTP {status}"), None
            log.error("Slack refused %s for good: %s", it.key, code or status)
            self.outbox.fail(it.id, str(code or status))
            return None, None
        except NETWORK_ERRORS as err:
            return self._pause(it, self._backoff(it), f"unreachable: {type(err).__name__}"), None
        self.outbox.complete(it.id, ts, chan)
        self.sent += 1
        return None, chan

    def _pause(self, it: OutboxItem, wait: float, reason: str) -> float:
        at = self.clock() + wait
        self.outbox.reschedule(it.id, at, reason)
        self.paused_until = at
        log.warning("Slack delivery paused %.1fs (%s) at %s", wait, reason, it.key)
        return wait

    def _backoff(self, it: OutboxItem) -> float:
        return min(self.backoff_cap, self.backoff_base * 2 ** it.attempts)  # attempts before this claim

    def _metadata(self, it: OutboxItem) -> dict[str, Any]:
        return {"event_type": METADATA_TYPE, "event_payload": {"outbox_key": it.key, "incident_id": it.incident_id}}

    def _send(self, it: OutboxItem, thread: tuple[str, str] | None) -> tuple[str, str]:
        p = it.payload
        if it.kind == "post":
            r = self.client.chat_postMessage(channel=it.channel, text=p["text"], blocks=p.get("blocks"),
                                             metadata=self._metadata(it), unfurl_links=False, unfurl_media=False)
            return r["ts"], r["channel"]
        assert thread is not None
        if it.kind == "upload":
            return send_upload(self.client, it, thread)
        if it.kind == "update":
            r = self.client.chat_update(channel=thread[0], ts=thread[1], text=p["text"], blocks=p.get("blocks"))
            return thread[1], thread[0]
        r = self.client.chat_postMessage(channel=thread[0], thread_ts=thread[1], text=p["text"],
                                         blocks=p.get("blocks"), metadata=self._metadata(it),
                                         unfurl_links=False, unfurl_media=False)
        return r["ts"], r["channel"]

    def _reconcile(self, it: OutboxItem, thread: tuple[str, str] | None) -> tuple[str, str] | None:
        """(ts, channel) of a message an earlier attempt of ``it`` already posted, if any."""
        try:
            if it.kind == "upload":
                assert thread is not None
                return find_upload(self.client, it, thread)
            if it.kind == "post":
                r = self.client.conversations_history(channel=it.channel, include_all_metadata=True, limit=100,
                                                      oldest=str(it.created_at.timestamp() - 60))
            else:
                assert thread is not None
                r = self.client.conversations_replies(channel=thread[0], ts=thread[1], include_all_metadata=True,
                                                      limit=200)
        except SlackApiError as err:
            if err.response.status_code == 429 or err.response.status_code >= 500:
                raise
            log.warning("cannot check whether %s was already posted (%s); posting", it.key,
                        err.response.get("error"))
            return None
        for m in r.get("messages", []):
            payload = (m.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_key") == it.key:
                return m["ts"], r.get("channel") or (thread[0] if thread else it.channel)
        return None

    # -- loops -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set (the worker's background task); every pass runs in a thread."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                wait = await asyncio.to_thread(self.step)
            except Exception:  # noqa: BLE001 - e.g. the database is down: try again, never die
                log.exception("Slack delivery pass failed; retrying")
                wait = min(self.backoff_cap, 5.0)
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
            except asyncio.TimeoutError:
                pass

    def drain(self, timeout: float = 60.0) -> bool:
        """Step until nothing is pending or sending (tests, the CLI); True if drained in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = self.step()
            counts = self.outbox.counts()
            if not counts.get("pending") and not counts.get("sending"):
                return True
            time.sleep(min(max(wait, 0.01), 0.5))
        return False
