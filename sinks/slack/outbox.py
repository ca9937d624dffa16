"""The Slack outbox: every Slack call is a row, recorded before it is sent and marked done after.

Rows are idempotent by ``key`` (one per incident and kind: ``inc-1:post``, ``inc-1:update:7``,
``inc-1:reply:open:3``), so a redelivered alert or a restarted agent enqueues nothing twice. A
row is *claimed* (``sending``) by a compare-and-set before its call, so two delivery loops
never send the same row; a claim older than the lease (a worker died mid-call) is taken
over. The first post of an incident records the message's channel id and ``ts`` in
``slack_threads``; updates and thread replies wait for it.

Tables ``slack_outbox`` and ``slack_threads`` live in :data:`OutboxBase` ``.metadata``; migration
0004 creates them (the outbox waits for them: :func:`sinks.migrations.wait_for_tables`).

>>> from sinks.migrations import upgrade
>>> box = SlackOutbox("sqlite://"); _ = upgrade(box.engine)
>>> box.enqueue("inc-1:post", "inc-1", "post", "#oncall", {"text": "hi"}), box.enqueue("inc-1:post", "inc-1",
...     "post", "#oncall", {"text": "hi"})
(True, False)
>>> [item] = box.due(now=1e10)
>>> box.claim(item.id, now=1e10, lease=30), box.claim(item.id, now=1e10, lease=30)
(True, False)
>>> box.complete(item.id, ts="1.000001", channel="C_ONCALL"); box.thread("inc-1")
('C_ONCALL', '1.000001')
>>> box.counts()
{'done': 1}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sinks.database import make_engine
from sinks.migrations import SCHEMA_WAIT_S, wait_for_tables

KINDS = ("post", "update", "reply", "upload")  # upload: a file into the thread (sinks.slack.uploads)


class OutboxBase(DeclarativeBase):
    pass


class OutboxRow(OutboxBase):
    __tablename__ = "slack_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, sending, done, superseded, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ThreadRow(OutboxBase):
    __tablename__ = "slack_threads"

    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(128))
    ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    incident_id: str
    kind: str
    channel: str
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: datetime
    ts: str | None = None
    error: str | None = None


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _item(r: OutboxRow) -> OutboxItem:
    return OutboxItem(r.id, r.key, r.incident_id, r.kind, r.channel, r.payload, r.status, r.attempts,
                      _utc(r.created_at), r.ts, r.error)  # type: ignore[arg-type]


class SlackOutbox:
    """The outbox rows in one database (thread-safe; call from a thread, not the event loop)."""

    def __init__(self, url: str, schema_wait: float = SCHEMA_WAIT_S) -> None:
        self.engine = make_engine(url)
        self.schema_wait = schema_wait
        self._schema_ready = False

    def _ready(self) -> None:
        if not self._schema_ready:
            wait_for_tables(self.engine, list(OutboxBase.metadata.tables), self.schema_wait)
            self._schema_ready = True

    def close(self) -> None:
        self.engine.dispose()

    def enqueue(self, key: str, incident_id: str, kind: str, channel: str, payload: dict[str, Any],
                now: float | None = None) -> bool:
        """Record a call to make; False if a row with ``key`` exists already (nothing is added)."""
        if kind not in KINDS:
            raise ValueError(f"unknown outbox kind {kind!r}")
        self._ready()
        at = _dt(now) if now is not None else datetime.now(timezone.utc)
        try:
            with Session(self.engine) as s, s.begin():
                s.add(OutboxRow(key=key, incident_id=incident_id, kind=kind, channel=channel, payload=payload,
                                status="pending", attempts=0, next_attempt_at=at, created_at=at))
        except IntegrityError:
            return False
        return True

    def due(self, now: float, lease: float = 30.0, limit: int = 200) -> list[OutboxItem]:
        """Rows to try now, oldest first: pending and due, or claimed longer ago than ``lease``."""
        self._ready()
        with Session(self.engine) as s:
            q = select(OutboxRow).where(
                ((OutboxRow.status == "pending") & (OutboxRow.next_attempt_at <= _dt(now)))
                | ((OutboxRow.status == "sending") & (OutboxRow.claimed_at <= _dt(now - lease)))
            ).order_by(OutboxRow.id).limit(limit)
            return [_item(r) for r in s.scalars(q)]

    def claim(self, item_id: int, now: float, lease: float = 30.0) -> bool:
        """Take a row for sending (compare-and-set); False if another loop has it or it is done."""
        self._ready()
        with Session(self.engine) as s, s.begin():
            res = s.execute(update(OutboxRow).where(
                (OutboxRow.id == item_id)
                & ((OutboxRow.status == "pending")
                   | ((OutboxRow.status == "sending") & (OutboxRow.claimed_at <= _dt(now - lease))))
            ).values(status="sending", claimed_at=_dt(now), attempts=OutboxRow.attempts + 1))
            return res.rowcount == 1  # type: ignore[attr-defined]

    def complete(self, item_id: int, ts: str | None, channel: str | None = None) -> None:
        """Mark done; a post also records its message (channel id, ts) for updates and replies."""
        self._ready()
        now = datetime.now(timezone.utc)
        with Session(self.engine) as s, s.begin():
            row = s.get(OutboxRow, item_id)
            if row is None:
                return
            row.status, row.ts, row.done_at, row.error = "done", ts, now, None
            if row.kind == "post" and ts is not None and s.get(ThreadRow, row.incident_id) is None:
                s.add(ThreadRow(incident_id=row.incident_id, channel=channel or row.channel, ts=ts, created_at=now))

    def reschedule(self, item_id: int, at: float, error: str) -> None:
        """Back to pending, to be tried again at ``at``."""
        self._set(item_id, status="pending", next_attempt_at=_dt(at), error=error[:500], claimed_at=None)

    def fail(self, item_id: int, error: str) -> None:
        """Give up on a row Slack refused for good (e.g. ``channel_not_found``); kept for inspection."""
        self._set(item_id, status="failed", error=error[:500], done_at=datetime.now(timezone.utc))

    def supersede(self, item_id: int) -> None:
        """An update replaced by a newer one of the same incident before it was sent."""
        self._set(item_id, status="superseded", done_at=datetime.now(timezone.utc))

    def _set(self, item_id: int, **values: Any) -> None:
        self._ready()
        with Session(self.engine) as s, s.begin():
            s.execute(update(OutboxRow).where(OutboxRow.id == item_id).values(**values))

    def thread(self, incident_id: str) -> tuple[str, str] | None:
        """(channel id, ts) of the incident's message once posted."""
        self._ready()
        with Session(self.engine) as s:
            row = s.get(ThreadRow, incident_id)
            return (row.channel, row.ts) if row is not None else None

    def counts(self) -> dict[str, int]:
        self._ready()
        with Session(self.engine) as s:
            return dict(s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())  # type: ignore[arg-type]

    def items(self, incident_id: str | None = None) -> list[OutboxItem]:
        self._ready()
        with Session(self.engine) as s:
            q = select(OutboxRow).order_by(OutboxRow.id)
            if incident_id is not None:
                q = q.where(OutboxRow.incident_id == incident_id)
            return [_item(r) for r in s.scalars(q)]
