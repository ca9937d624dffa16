"""The alert store: SQLAlchemy 2, SQLite by default, PostgreSQL in production.

Writes are idempotent by fingerprint, so an at-least-once redelivery never duplicates:

>>> from datetime import datetime, timezone
>>> from schemas.alert import Alert
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> a = Alert(series_key="team=a", metric="spend", detector="d", score=1.0, observed=2.0,
...           baseline=1.0, expected_low=0.5, expected_high=1.5, window_start=t, window_end=t, started_at=t)
>>> store = AlertStore("sqlite://")
>>> store.save_alert(a), store.save_alert(a), len(store.alerts())
(True, False, 1)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import JSON, DateTime, Float, Integer, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from schemas.alert import Alert
from schemas.events import as_utc_or_none
from schemas.deadletter import DeadLetter
from sinks.database import create_tables, make_engine


class Base(DeclarativeBase):
    pass


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    series_key: Mapped[str] = mapped_column(String(1024), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    observed: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int | None] = mapped_column(Integer, nullable=True)
    offset: Mapped[int | None] = mapped_column(Integer, nullable=True)
    index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(2000))
    original_b64: Mapped[str] = mapped_column(String)
    key_b64: Mapped[str | None] = mapped_column(String, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AlertStore:
    """Alerts and dead letters in one database. Thread-safe; call from a thread, not the event loop."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._schema_ready = False  # created on first use: a database that is down at start is retried

    def _ready(self) -> None:
        if not self._schema_ready:
            create_tables(self.engine, Base.metadata, [AlertRow.__table__, DeadLetterRow.__table__])
            self._schema_ready = True

    def close(self) -> None:
        self.engine.dispose()

    def save_alert(self, alert: Alert) -> bool:
        """Insert a firing alert or apply a resolution; True if anything changed."""
        self._ready()
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(AlertRow).where(AlertRow.fingerprint == alert.fingerprint))
            if row is None:
                s.add(AlertRow(
                    fingerprint=alert.fingerprint, series_key=alert.series_key, metric=alert.metric,
                    detector=alert.detector, status=alert.status, severity=alert.severity,
                    score=alert.score, observed=alert.observed, baseline=alert.baseline,
                    started_at=alert.started_at,
                    resolved_at=alert.window_end if alert.status == "resolved" else None,
                    payload=orjson.loads(alert.model_dump_json()), created_at=datetime.now(timezone.utc)))
                try:
                    s.flush()
                except IntegrityError:  # a concurrent writer inserted it first
                    s.rollback()
                    return False
                return True
            if alert.status == "resolved" and row.status != "resolved":
                row.status, row.resolved_at = "resolved", alert.window_end
                return True
            return False

    def alerts(self, status: str | None = None) -> list[Alert]:
        self._ready()
        with Session(self.engine) as s:
            q = select(AlertRow).order_by(AlertRow.started_at, AlertRow.id)
            if status:
                q = q.where(AlertRow.status == status)
            out = []
            for row in s.scalars(q):
                alert = Alert.model_validate(row.payload)
                alert.status = row.status  # type: ignore[assignment]
                out.append(alert)
            return out

    def save_dead_letter(self, dl: DeadLetter) -> bool:
        """Store a dead letter once (by :attr:`DeadLetter.fingerprint`); False if it was already there."""
        self._ready()
        try:
            with Session(self.engine) as s, s.begin():
                s.add(DeadLetterRow(fingerprint=dl.fingerprint, topic=dl.topic, partition=dl.partition,
                                    offset=dl.offset, index=dl.index, reason=dl.reason[:2000],
                                    original_b64=dl.original_b64, key_b64=dl.key_b64, received_at=dl.received_at))
        except IntegrityError:
            return False
        return True

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest ``limit`` dead letters, newest first."""
        return [dl for _, dl in self.dead_letter_rows(limit=limit)]

    def dead_letter_rows(self, limit: int = 100, pending_only: bool = False, topic: str | None = None,
                         reason_contains: str | None = None) -> list[tuple[int, DeadLetter]]:
        """(id, dead letter) pairs, newest first; ``pending_only`` skips ones already replayed."""
        self._ready()
        with Session(self.engine) as s:
            q = select(DeadLetterRow).order_by(DeadLetterRow.id.desc()).limit(limit)
            if pending_only:
                q = q.where(DeadLetterRow.replayed_at.is_(None))
            if topic:
                q = q.where(DeadLetterRow.topic == topic)
            if reason_contains:
                q = q.where(DeadLetterRow.reason.contains(reason_contains))
            return [(r.id, DeadLetter(reason=r.reason, topic=r.topic, partition=r.partition, offset=r.offset,
                                      index=r.index, original_b64=r.original_b64, key_b64=r.key_b64,
                                      received_at=as_utc_or_none(r.received_at)))
                    for r in s.scalars(q)]

    def purge_dead_letters(self, older_than_days: float, now: datetime | None = None) -> int:
        """Delete dead letters received more than ``older_than_days`` ago (``BURNGUARD_DEAD_LETTER_RETENTION_DAYS``);
        returns how many were deleted."""
        if older_than_days <= 0:
            raise ValueError("older_than_days must be > 0")
        self._ready()
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=older_than_days)
        with Session(self.engine) as s, s.begin():
            result = s.execute(delete(DeadLetterRow).where(DeadLetterRow.received_at < cutoff))
            return int(result.rowcount or 0)

    def mark_replayed(self, ids: list[int]) -> None:
        self._ready()
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(select(DeadLetterRow).where(DeadLetterRow.id.in_(ids))):
                row.replayed_at = datetime.now(timezone.utc)
