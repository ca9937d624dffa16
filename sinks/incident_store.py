"""Incidents and people's commands on them, in the database (SQLAlchemy 2; SQLite or PostgreSQL).

- ``incidents``: the latest :class:`~schemas.incident.IncidentRecord` of each incident, written by the
  stream; an older revision never overwrites a newer one (redelivery, two workers).
- ``incident_commands``: acknowledge / snooze / resolve from Slack buttons or the CLI, idempotent by
  a dedupe key (a replayed callback adds nothing); the stream applies each and marks it applied.

Tables live in :data:`IncidentBase` ``.metadata``; migration 0004 creates them (the store waits for
them: :func:`sinks.migrations.wait_for_tables`).

>>> from datetime import datetime, timezone
>>> from detectors.incidents.silence import Acknowledge
>>> from schemas.incident import IncidentRecord
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> from sinks.migrations import upgrade
>>> store = IncidentStore("sqlite://"); _ = upgrade(store.engine)
>>> rec = IncidentRecord(id="inc-1", status="firing", title="x", subject_key="budget=org", metric="spend",
...     score=1.0, observed=2.0, baseline=1.0, expected_low=0.0, expected_high=1.0, started_at=t, updated_at=t, rev=3)
>>> store.save(rec), store.save(rec.model_copy(update={"rev": 2, "status": "resolved"})), store.get("inc-1").status
(True, False, 'firing')
>>> store.add_command(Acknowledge("inc-1", by="alice", at=t), source="cli", dedupe_key="k1"), \\
...     store.add_command(Acknowledge("inc-1", by="alice", at=t), source="cli", dedupe_key="k1")
(True, False)
>>> [(i, c.by) for i, c in store.pending_commands()]
[(1, 'alice')]
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson
from sqlalchemy import JSON, DateTime, Engine, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from detectors.incidents.silence import Acknowledge, Command, Resolve, Snooze
from schemas.incident import IncidentRecord
from sinks.database import make_engine
from sinks.migrations import SCHEMA_WAIT_S, wait_for_tables

OPEN_STATES = ("pending", "firing")


class IncidentBase(DeclarativeBase):
    pass


class IncidentRow(IncidentBase):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    subject_key: Mapped[str] = mapped_column(String(1024))
    metric: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(1024))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rev: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict] = mapped_column(JSON)


class CommandRow(IncidentBase):
    __tablename__ = "incident_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(255))
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16))  # slack | cli
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def command_of(row: CommandRow) -> Command:
    at = _utc(row.at)
    if row.kind == "ack":
        return Acknowledge(row.incident_id, by=row.by, at=at)  # type: ignore[arg-type]
    if row.kind == "snooze":
        return Snooze(row.incident_id, until=_utc(row.until), by=row.by, at=at)  # type: ignore[arg-type]
    return Resolve(row.incident_id, by=row.by, at=at)  # type: ignore[arg-type]


def command_kind(cmd: Command) -> str:
    return "ack" if isinstance(cmd, Acknowledge) else "snooze" if isinstance(cmd, Snooze) else "resolve"


class IncidentStore:
    """Thread-safe; call from a thread, not the event loop. ``url``: a database URL, or an engine to share
    (the caller disposes of it)."""

    def __init__(self, url: str | Engine, schema_wait: float = SCHEMA_WAIT_S) -> None:
        self._own_engine = not isinstance(url, Engine)
        self.engine = make_engine(url) if isinstance(url, str) else url
        self.schema_wait = schema_wait
        self._schema_ready = False

    def _ready(self) -> None:
        if not self._schema_ready:
            wait_for_tables(self.engine, list(IncidentBase.metadata.tables), self.schema_wait)
            self._schema_ready = True

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    def save(self, rec: IncidentRecord) -> bool:
        """Insert or update to ``rec``; False if the stored revision is as new or newer."""
        self._ready()
        values = dict(status=rec.status, subject_key=rec.subject_key[:1024], metric=rec.metric,
                      severity=rec.severity, title=rec.title[:1024], started_at=rec.started_at,
                      updated_at=rec.updated_at, resolved_at=rec.resolved_at, rev=rec.rev,
                      record=orjson.loads(rec.model_dump_json()))
        try:
            with Session(self.engine) as s, s.begin():
                row = s.get(IncidentRow, rec.id)
                if row is None:
                    s.add(IncidentRow(id=rec.id, **values))
                    return True
                res = s.execute(update(IncidentRow).where((IncidentRow.id == rec.id) & (IncidentRow.rev < rec.rev))
                                .values(**values))
                return res.rowcount == 1  # type: ignore[attr-defined]
        except IntegrityError:  # inserted by another writer at the same moment: retry as an update
            return self.save(rec)

    def get(self, incident_id: str) -> IncidentRecord | None:
        self._ready()
        with Session(self.engine) as s:
            row = s.get(IncidentRow, incident_id)
            return IncidentRecord.model_validate(row.record) if row is not None else None

    def incidents(self, state: str | None = None, limit: int = 200) -> list[IncidentRecord]:
        """Newest first; ``state``: ``open`` (pending or firing), ``firing``, ``pending``, ``resolved``, ``all`` or None."""
        self._ready()
        with Session(self.engine) as s:
            q = select(IncidentRow).order_by(IncidentRow.started_at.desc(), IncidentRow.id).limit(limit)
            if state == "open":
                q = q.where(IncidentRow.status.in_(OPEN_STATES))
            elif state and state != "all":
                q = q.where(IncidentRow.status == state)
            return [IncidentRecord.model_validate(r.record) for r in s.scalars(q)]

    def add_command(self, cmd: Command, source: str, dedupe_key: str | None = None) -> bool:
        """Queue ``cmd`` for the stream; False if its dedupe key was seen (a replay: nothing added)."""
        self._ready()
        kind = command_kind(cmd)
        until = cmd.until if isinstance(cmd, Snooze) else None
        key = dedupe_key or hashlib.sha256(
            f"{source}\x1f{cmd.incident_id}\x1f{kind}\x1f{cmd.by}\x1f{cmd.at.isoformat()}".encode()).hexdigest()
        try:
            with Session(self.engine) as s, s.begin():
                s.add(CommandRow(dedupe_key=key[:128], incident_id=cmd.incident_id, kind=kind, by=cmd.by[:255],
                                 until=until, at=cmd.at, source=source))
        except IntegrityError:
            return False
        return True

    def pending_commands(self, limit: int = 100) -> list[tuple[int, Command]]:
        """Commands the stream has not applied yet, oldest first."""
        self._ready()
        with Session(self.engine) as s:
            q = select(CommandRow).where(CommandRow.applied_at.is_(None)).order_by(CommandRow.id).limit(limit)
            return [(r.id, command_of(r)) for r in s.scalars(q)]

    def pending_for(self, incident_id: str) -> list[Command]:
        self._ready()
        with Session(self.engine) as s:
            q = select(CommandRow).where((CommandRow.incident_id == incident_id) & CommandRow.applied_at.is_(None))
            return [command_of(r) for r in s.scalars(q.order_by(CommandRow.id))]

    def mark_applied(self, ids: list[int]) -> None:
        if not ids:
            return
        self._ready()
        with Session(self.engine) as s, s.begin():
            s.execute(update(CommandRow).where(CommandRow.id.in_(ids)).values(applied_at=datetime.now(timezone.utc)))
