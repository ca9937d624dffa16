"""``POST /slack/interactions``: verify, record and queue button presses (Acknowledge, Snooze, Resolve).

Every callback is checked with slack-sdk's ``SignatureVerifier`` and the signing secret: a
missing, wrong or older-than-5-minutes signature answers 401 and is recorded (``slack_callbacks``,
status ``rejected`` with the reason). A valid press becomes a typed :class:`IncidentAction`,
then an :mod:`~detectors.incidents.silence` command queued in ``incident_commands`` under a
dedupe key made of the action's identity (action_ts, action id, user, incident), so a replayed
callback adds nothing. The answer is immediate (Slack wants one within 3 s); the stream applies
the command and updates the message through the outbox.

>>> import json, time
>>> from urllib.parse import urlencode
>>> from slack_sdk.signature import Clock, SignatureVerifier
>>> from sinks.migrations import upgrade
>>> inbox = SlackInteractions("s3cret", "sqlite://"); _ = upgrade(inbox.engine)
>>> body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1", "username": "ann"},
...     "actions": [{"action_id": "incident_ack", "value": "inc-1", "action_ts": "1.5"}]})}).encode()
>>> ts = str(int(time.time()))
>>> headers = {"X-Slack-Request-Timestamp": ts,
...            "X-Slack-Signature": SignatureVerifier("s3cret").generate_signature(timestamp=ts, body=body)}
>>> inbox.handle(body, headers)[0], inbox.handle(body, headers)[0], inbox.handle(body, {})[0]
(200, 200, 401)
>>> [(c.by, type(c).__name__) for _, c in inbox.incidents.pending_commands()]
[('U1', 'Acknowledge')]
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from detectors.incidents.silence import Acknowledge, Command, Resolve, Snooze
from sinks.database import make_engine
from sinks.migrations import SCHEMA_WAIT_S, wait_for_tables
from sinks.incident_store import IncidentStore
from sinks.slack.blocks import ACK, ACTIONS, RESOLVE

log = logging.getLogger("burnguard.slack")
MAX_AGE_S = 300  # Slack's replay window: 5 minutes


class InteractionsBase(DeclarativeBase):
    pass


class CallbackRow(InteractionsBase):
    __tablename__ = "slack_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[str] = mapped_column(String(16))  # accepted, duplicate, rejected, ignored
    reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    incident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body_sha256: Mapped[str] = mapped_column(String(64))


class IncidentAction(BaseModel):
    """One button press on an incident message."""

    incident_id: str
    action_id: str
    user_id: str
    user_name: str | None = None
    action_ts: str
    response_url: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None

    @property
    def dedupe_key(self) -> str:
        raw = f"{self.action_ts}\x1f{self.action_id}\x1f{self.user_id}\x1f{self.incident_id}".encode()
        return hashlib.sha256(raw).hexdigest()

    def to_command(self, now: datetime) -> Command:
        if self.action_id == ACK:
            return Acknowledge(self.incident_id, by=self.user_id, at=now)
        if self.action_id == RESOLVE:
            return Resolve(self.incident_id, by=self.user_id, at=now)
        seconds = ACTIONS[self.action_id]
        assert seconds is not None
        return Snooze(self.incident_id, until=now + timedelta(seconds=seconds), by=self.user_id, at=now)


def parse_actions(body: bytes) -> list[IncidentAction]:
    """The incident actions in a ``block_actions`` callback (form field ``payload``); others are ignored.

    >>> import json
    >>> from urllib.parse import urlencode
    >>> b = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U9"},
    ...     "actions": [{"action_id": "incident_snooze_1h", "value": "inc-7", "action_ts": "2.0"},
    ...                 {"action_id": "something_else", "value": "x", "action_ts": "2.0"}]})}).encode()
    >>> [(a.incident_id, a.action_id, a.user_id) for a in parse_actions(b)]
    [('inc-7', 'incident_snooze_1h', 'U9')]
    >>> parse_actions(b"payload=not-json")
    Traceback (most recent call last):
    ...
    ValueError: callback payload is not JSON
    """
    fields = parse_qs(body.decode("utf-8", "replace"))
    raw = (fields.get("payload") or [""])[0]
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError("callback payload is not JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != "block_actions":
        return []
    user = doc.get("user") or {}
    container = doc.get("container") or {}
    out = []
    for a in doc.get("actions") or []:
        if not isinstance(a, dict) or a.get("action_id") not in ACTIONS:
            continue
        try:
            out.append(IncidentAction(incident_id=str(a.get("value", ""))[:64], action_id=a["action_id"],
                                      user_id=str(user.get("id", ""))[:64], user_name=user.get("username"),
                                      action_ts=str(a.get("action_ts", "")), response_url=doc.get("response_url"),
                                      channel_id=container.get("channel_id"), message_ts=container.get("message_ts")))
        except ValidationError:
            continue
    return [a for a in out if a.incident_id and a.user_id and a.action_ts]


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackInteractions:
    """Verify and record callbacks; queue their commands in the incident store."""

    def __init__(self, signing_secret: str, database_url: str, clock: Callable[[], float] = time.time,
                 handlers: Sequence[Any] = (), schema_wait: float = SCHEMA_WAIT_S) -> None:
        self.clock = clock
        #: Other families' callbacks, asked first: ``parse(body)`` -> a callback with ``dedupe_key``,
        #: ``subject_id``, ``action``, ``user_id`` (None: not theirs); ``apply(callback, now)`` -> (status, body).
        #: Finance approvals: sinks.slack.approval_interactions.ApprovalInteractions.
        self.handlers = list(handlers)
        self.verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self.engine = make_engine(database_url)
        self.incidents = IncidentStore(self.engine, schema_wait)  # one engine (and pool) for both
        self.schema_wait = schema_wait
        self._schema_ready = False

    def _ready(self) -> None:
        """Wait for the tables (migration 0004; the worker upgrades at start). Only reads the schema, so
        callbacks handled at once in several threads no longer race to create tables."""
        if not self._schema_ready:
            wait_for_tables(self.engine, list(InteractionsBase.metadata.tables), self.schema_wait)
            self._schema_ready = True

    def close(self) -> None:
        self.engine.dispose()
        self.incidents.close()

    def rejection(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Why this callback is not from Slack (None if it is)."""
        h = {k.lower(): v for k, v in headers.items()}
        ts, sig = h.get("x-slack-request-timestamp"), h.get("x-slack-signature")
        if not ts or not sig:
            return "missing signature"
        try:
            age = abs(self.clock() - int(ts))
        except ValueError:
            return "malformed timestamp"
        if age > MAX_AGE_S:
            return "stale timestamp"
        if not self.verifier.is_valid(body, ts, sig):
            return "bad signature"
        return None

    def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """(HTTP status, body) for one callback; blocking (database), run it in a thread."""
        self._ready()
        digest = hashlib.sha256(body).hexdigest()
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        reason = self.rejection(body, headers)
        if reason is not None:
            log.warning("Slack callback rejected: %s", reason)
            self._record(now, "rejected", digest, reason=reason)
            return 401, "invalid request signature"
        for h in self.handlers:
            cb = h.parse(body)
            if cb is not None:
                fields = dict(incident_id=cb.subject_id[:64], action=cb.action[:64], user_id=cb.user_id[:64])
                if not self._record(now, "accepted", digest, dedupe_key=cb.dedupe_key, **fields):
                    self._record(now, "duplicate", digest, reason="replayed callback", **fields)
                    return 200, ""
                return h.apply(cb, now)
        try:
            actions = parse_actions(body)
        except ValueError as err:
            self._record(now, "ignored", digest, reason=str(err))
            return 400, "unreadable payload"
        if not actions:
            self._record(now, "ignored", digest, reason="no incident action")
            return 200, ""
        for a in actions:
            fields = dict(incident_id=a.incident_id, action=a.action_id, user_id=a.user_id)
            if not self._record(now, "accepted", digest, dedupe_key=a.dedupe_key, **fields):
                self._record(now, "duplicate", digest, reason="replayed callback", **fields)
                continue
            self.incidents.add_command(a.to_command(now), source="slack", dedupe_key=a.dedupe_key)
        return 200, ""

    def _record(self, now: datetime, status: str, digest: str, **values: Any) -> bool:
        try:
            with Session(self.engine) as s, s.begin():
                s.add(CallbackRow(received_at=now, status=status, body_sha256=digest, **values))
        except IntegrityError:
            return False
        return True

    def callbacks(self) -> list[tuple[str, str | None]]:
        """(status, reason) of every recorded callback, oldest first (tests, audits)."""
        self._ready()
        with Session(self.engine) as s:
            return [(r.status, r.reason) for r in s.scalars(select(CallbackRow).order_by(CallbackRow.id))]


def aiohttp_handler(inbox: SlackInteractions) -> Callable[[Any], Awaitable[Any]]:
    """An aiohttp handler for ``POST /slack/interactions`` (the worker's Faust web view can call
    :meth:`SlackInteractions.handle` the same way)."""
    import asyncio

    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        status, text = await asyncio.to_thread(inbox.handle, body, dict(request.headers))
        return web.Response(status=status, text=text)

    return handler
