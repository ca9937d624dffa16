"""Budget snapshots: each budget's period-to-date spend, burn rates and forecast, as the stream holds them.

The budgets agent writes a snapshot whenever a budget changed (at most every few seconds), replacing
the budget's row, so ``burnguard budgets`` shows the live figures from any machine, and a crash or
a rebalance rewrites the row from the recovered state (a snapshot is a copy, never a sum).

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 1, tzinfo=timezone.utc)
>>> store = BudgetStore("sqlite://")
>>> snap = BudgetSnapshot(budget_id="org", scope={}, tier=None, period="month", period_start=t, cap_usd=100.0,
...                       spend_usd=12.5, updated_at=t)
>>> store.save_snapshots([snap]); store.save_snapshots([snap.model_copy(update={"spend_usd": 13.0})])
>>> [(s.budget_id, s.spend_usd) for s in store.snapshots()]
[('org', 13.0)]
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, Float, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from sinks.database import create_tables, make_engine
from sinks.store import Base


class BudgetSnapshot(BaseModel):
    """One budget as the stream holds it now."""

    budget_id: str
    scope: dict[str, list[str]]
    tier: str | None
    period: str
    period_start: datetime | None
    cap_usd: float
    spend_usd: float
    burn_rates: dict[str, float] = {}  # window seconds -> burn rate (x the even pace)
    forecast_usd: float | None = None
    exhausted_at: datetime | None = None
    firing: list[str] = []  # burn rules with an open incident
    updated_at: datetime


class BudgetSnapshotRow(Base):
    __tablename__ = "budget_snapshots"

    budget_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    payload: Mapped[dict] = mapped_column(JSON)
    spend_usd: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BudgetStore:
    """Thread-safe; call from a thread, not the event loop."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._schema_ready = False

    def _ready(self) -> None:
        if not self._schema_ready:
            create_tables(self.engine, Base.metadata, [BudgetSnapshotRow.__table__])
            self._schema_ready = True

    def close(self) -> None:
        self.engine.dispose()

    def save_snapshots(self, snaps: list[BudgetSnapshot]) -> None:
        self._ready()
        with Session(self.engine) as s, s.begin():
            for snap in snaps:
                row = s.get(BudgetSnapshotRow, snap.budget_id)
                payload = snap.model_dump(mode="json")
                if row is None:
                    s.add(BudgetSnapshotRow(budget_id=snap.budget_id, payload=payload, spend_usd=snap.spend_usd,
                                            updated_at=snap.updated_at))
                else:
                    row.payload, row.spend_usd, row.updated_at = payload, snap.spend_usd, snap.updated_at

    def snapshots(self) -> list[BudgetSnapshot]:
        self._ready()
        with Session(self.engine) as s:
            return [BudgetSnapshot.model_validate(r.payload)
                    for r in s.scalars(select(BudgetSnapshotRow).order_by(BudgetSnapshotRow.budget_id))]
