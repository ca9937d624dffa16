"""``burnguard budgets``: every budget of the budgets file with its period-to-date spend, as the stream holds it.

The figures come from the budget snapshots the budgets agent stores (:mod:`sinks.budget_store`, at
``BURNGUARD_DATABASE_URL``); the list of budgets, their scope, tier, period and cap from the budgets
file (``BURNGUARD_BUDGETS`` or the shipped one). A budget the stream has not booked anything to yet
shows 0 spend and "no spend yet"; a stored budget the file no longer has is listed last, marked.
``--json`` prints the same rows for machines.

Next to the cap, the **effective cap**: the cap plus the grants active now (guardrail decisions stored
at the same database, :func:`guardrails.grants.effective_cap`; for a period that has already ended, as
it stood at its end); a budget spending above its cap but within its grants is "within grants", above
the effective cap "over cap".

>>> from datetime import datetime, timedelta, timezone
>>> from guardrails.budget_book import BudgetBook
>>> book = BudgetBook.from_yaml_text('''
... budgets:
...   - {id: org, cap_usd: 1000}
...   - {id: lab, parent: org, tier: sandbox, scope: {team: research, tier: sandbox}, cap_usd: 10}
... ''')
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> snap = BudgetSnapshot(budget_id="org", scope={}, tier=None, period="month", period_start=t, cap_usd=1000.0,
...                       spend_usd=250.0, burn_rates={"3600": 2.5, "300": 4.0}, updated_at=t)
>>> [(r.budget_id, r.spend_usd, r.spent_fraction, r.state) for r in budget_rows(book, [snap])]
[('org', 250.0, 0.25, 'ok'), ('lab', 0.0, 0.0, 'no spend yet')]
>>> lab = BudgetSnapshot(budget_id="lab", scope={}, tier="sandbox", period="day", period_start=t, cap_usd=10.0,
...                      spend_usd=12.0, updated_at=t)
>>> g = Grant("d1", "lab", "small", 5.0, "period", t, t.replace(day=21), t, t.replace(hour=6))
>>> [(r.cap_usd, r.granted_usd, r.effective_cap_usd, r.state)
...  for r in budget_rows(book, [lab], [g], now=t.replace(hour=1))][1:]
[(10.0, 5.0, 15.0, 'within grants')]
>>> budget_rows(book, [lab], [g], now=t.replace(hour=7))[1].state     # the grant expired at 06:00
'over cap'
>>> g2 = Grant("d2", "lab", "small", 5.0, "period", t, t.replace(day=21), t.replace(day=22), t.replace(day=21))
>>> budget_rows(book, [lab], [g2], now=t.replace(day=22))[1].effective_cap_usd  # the 20th's cap, as it ended
15.0
>>> scope_text(budget_rows(book, [])[1].scope), burn_text({"3600": 2.5, "300": 4.0})
('team=research, tier=sandbox', '5m 4.00×  1h 2.50×')
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from guardrails.budget_book import BudgetBook, BudgetSpec, ConfigError, period_bounds
from guardrails.grants import Grant, active_grants_usd
from schemas.text import safe_terminal
from sinks.budget_store import BudgetSnapshot, BudgetSnapshotRow, BudgetStore
from sinks.guardrail_store import GuardrailStore
from sinks.guardrail_tables import GrantRow
from streams.settings import Settings

NO_SPEND = "no spend yet"
NOT_IN_FILE = "not in the budgets file"
WITHIN_GRANTS = "within grants"


class BudgetRow(BaseModel):
    """One line of ``burnguard budgets`` (and one object of ``--json``)."""

    budget_id: str
    name: str | None = None
    parent: str | None = None
    scope: dict[str, list[str]]  # dimension -> values; {} is everything (the org level)
    tier: str | None  # the budget's maturity tier (scope.tier, if any, is in ``scope``)
    period: str
    period_start: datetime | None  # of the period the spend is for (event time, UTC)
    cap_usd: float
    granted_usd: float = 0.0  # guardrail grants active now, or at the end of a period that has ended
    effective_cap_usd: float  # cap + granted: what the budget may spend this period now
    spend_usd: float  # period-to-date
    spent_fraction: float
    burn_rates: dict[str, float] = {}  # window seconds -> burn rate (x the pace that lands on the cap)
    forecast_usd: float | None = None  # projected spend at the end of the period
    exhausted_at: datetime | None = None  # projected exhaustion within the period (None: not at this rate)
    firing: list[str] = []  # burn rules with an open incident
    updated_at: datetime | None = None  # when the stream wrote the figures (wall time)
    state: str  # "ok", "firing", "within grants", "over cap", "no spend yet" or "not in the budgets file"


def _state(spend: float, cap: float, effective: float, firing: list[str], has_snapshot: bool, in_file: bool) -> str:
    if not in_file:
        return NOT_IN_FILE
    if not has_snapshot:
        return NO_SPEND
    if spend >= effective:
        return "over cap"
    if spend >= cap:
        return WITHIN_GRANTS
    return "firing" if firing else "ok"


def _row(spec: BudgetSpec | None, snap: BudgetSnapshot | None, granted: float = 0.0) -> BudgetRow:
    if spec is not None:
        scope = {d: list(v) for d, v in spec.scope}
        budget_id, tier, period, cap = spec.id, spec.tier, spec.period, spec.cap_usd
    else:
        assert snap is not None
        budget_id, scope, tier, period, cap = snap.budget_id, snap.scope, snap.tier, snap.period, snap.cap_usd
    spend = snap.spend_usd if snap is not None else 0.0
    firing = list(snap.firing) if snap is not None else []
    return BudgetRow(
        budget_id=budget_id, name=spec.name if spec else None, parent=spec.parent if spec else None, scope=scope,
        tier=tier, period=period, period_start=snap.period_start if snap else None, cap_usd=cap, spend_usd=spend,
        granted_usd=granted, effective_cap_usd=round(cap + granted, 6),
        spent_fraction=spend / cap if cap else 0.0, burn_rates=dict(snap.burn_rates) if snap else {},
        forecast_usd=snap.forecast_usd if snap else None, exhausted_at=snap.exhausted_at if snap else None,
        firing=firing, updated_at=snap.updated_at if snap else None,
        state=_state(spend, cap, round(cap + granted, 6), firing, snap is not None, spec is not None))


def _grants_at(snap: BudgetSnapshot | None, now: datetime) -> datetime:
    """When the grants of a row are judged: now, or the last moment of the period the row shows if it has
    ended (a replayed day, a worker that caught up after midnight): the cap that period had at its end."""
    if snap is None or snap.period_start is None:
        return now
    end = period_bounds(snap.period, snap.period_start)[1]  # type: ignore[arg-type]
    return min(now, end - timedelta(microseconds=1))


def budget_rows(book: BudgetBook, snapshots: list[BudgetSnapshot], grants: Iterable[Grant] = (),
                now: datetime | None = None) -> list[BudgetRow]:
    """Every budget of ``book`` in file order with its stored figures, then stored budgets the file lacks;
    each with the ``grants`` active at ``now`` (default: the wall clock; for a period that has ended, at its
    end) added to its effective cap."""
    now = now or datetime.now(timezone.utc)
    by_budget: dict[str, list[Grant]] = defaultdict(list)
    for g in grants:
        by_budget[g.budget_id].append(g)
    by_id = {s.budget_id: s for s in snapshots}

    def row(spec: BudgetSpec | None, snap: BudgetSnapshot | None) -> BudgetRow:
        budget_id = spec.id if spec is not None else snap.budget_id  # type: ignore[union-attr]
        return _row(spec, snap, active_grants_usd(by_budget.get(budget_id, ()), _grants_at(snap, now)))

    rows = [row(spec, by_id.get(spec.id)) for spec in book]
    rows += [row(None, s) for s in snapshots if s.budget_id not in book]
    return rows


def scope_text(scope: dict[str, list[str]]) -> str:
    """``team=search, feature=answers`` (``a|b`` for several values); the empty scope is everything."""
    if not scope:
        return "(all spend)"
    return ", ".join(f"{d}={'|'.join(v)}" for d, v in scope.items())


def window_text(seconds: int) -> str:
    """``300`` -> ``5m``, ``3600`` -> ``1h``, ``86400`` -> ``1d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def burn_text(rates: dict[str, float]) -> str:
    """Burn rates, shortest window first."""
    return "  ".join(f"{window_text(int(w))} {r:.2f}×" for w, r in sorted(rates.items(), key=lambda x: int(x[0])))


def _money(v: float | None) -> str:
    return "—" if v is None else f"${v:,.2f}"


def _when(t: datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M")


def budgets_table(rows: list[BudgetRow], title: str = "budgets") -> Table:
    """The rows as a rich table; every text cell is escaped (ids, scopes and rule names are shown as text)."""
    table = Table(title=title)
    for col in ("budget", "scope", "tier", "period", "cap", "effective cap", "spent", "%", "burn rate", "forecast",
                "exhausts", "state", "updated (UTC)"):
        table.add_column(col, justify="right" if col in ("cap", "effective cap", "spent", "%", "forecast") else "left")
    for r in rows:
        period = r.period if r.period_start is None else f"{r.period} from {r.period_start:%Y-%m-%d}"
        state = f"firing: {', '.join(r.firing)}" if r.state == "firing" else r.state
        table.add_row(safe_terminal(r.budget_id), safe_terminal(scope_text(r.scope)), safe_terminal(r.tier or "—"),
                      safe_terminal(period), _money(r.cap_usd), _money(r.effective_cap_usd), _money(r.spend_usd),
                      f"{100 * r.spent_fraction:.1f}",
                      safe_terminal(burn_text(r.burn_rates) or "—"), _money(r.forecast_usd), _when(r.exhausted_at),
                      safe_terminal(state), _when(r.updated_at))
    return table


class DatabaseUnreachable(RuntimeError):
    """The store cannot be read; the message is one sentence without secrets."""


def database_place(url: URL) -> str:
    """Where a database URL points, without user or password: ``db.internal:5432`` or the SQLite file.

    >>> database_place(make_url("postgresql+psycopg://u:secret@db.internal:6543/x"))
    'host db.internal:6543'
    >>> database_place(make_url("sqlite:///var/lib/burnguard.db"))
    'SQLite file var/lib/burnguard.db'
    """
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}" if url.database and url.database != ":memory:" else "in-memory SQLite"
    return f"host {url.host or 'localhost'}" + (f":{url.port}" if url.port else "")


def _reason(err: BaseException, url: URL) -> str:
    orig = getattr(err, "orig", None) or err
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    reason = lines[0] if lines else type(orig).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:200]


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database holds for ``burnguard budgets``."""

    snapshots: list[BudgetSnapshot] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    note: str | None = None  # why nothing is shown yet


def stored_figures(database_url: str) -> Stored:
    """The stored snapshots and guardrail grants, and a note when there are no snapshots yet (no database
    file, no table); read-only: nothing is created. Raises :class:`DatabaseUnreachable` with one clear sentence."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseUnreachable("BURNGUARD_DATABASE_URL is not a database URL (expected e.g. "
                                  "postgresql+psycopg://user@host/db or sqlite:///burnguard.db)") from None
    place = database_place(url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not Path(url.database).exists():
        return Stored(note=f"no database file at {url.database} yet: nothing stored (is the worker using this "
                           "BURNGUARD_DATABASE_URL?)")
    try:
        store = BudgetStore(database_url)
    except (SQLAlchemyError, ImportError) as err:
        raise DatabaseUnreachable(f"cannot use the database BURNGUARD_DATABASE_URL points at ({place}): "
                                  f"{_reason(err, url)}") from None
    guard = GuardrailStore(store.engine)  # same engine; closed with it
    try:
        tables = inspect(store.engine)
        grants = guard.grants() if tables.has_table(GrantRow.__tablename__) else []
        if not tables.has_table(BudgetSnapshotRow.__tablename__):
            return Stored(grants=grants, note=f"no budget snapshots stored in the database at {place} yet")
        return Stored(snapshots=store.snapshots(), grants=grants)
    except (SQLAlchemyError, OSError) as err:
        raise DatabaseUnreachable(f"cannot read the database BURNGUARD_DATABASE_URL points at ({place}): "
                                  f"{_reason(err, url)}") from None
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
        book = BudgetBook.load(settings.budgets)
        stored = stored_figures(settings.database_url)
    except ValidationError as err:
        for e in err.errors():
            print(f"error: setting BURNGUARD_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}", file=sys.stderr)
        return 2
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 2
    except DatabaseUnreachable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows, note = budget_rows(book, stored.snapshots, stored.grants), stored.note
    if args.json:
        try:
            sys.stdout.buffer.write(orjson.dumps([r.model_dump(mode="json") for r in rows],
                                                 option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
            sys.stdout.flush()
        except BrokenPipeError:  # `burnguard budgets --json | head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's flush at exit
    else:
        Console().print(budgets_table(rows, title=f"budgets ({safe_terminal(book.source)})"))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("budgets", help="list budgets with period-to-date spend, burn rates and forecast")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)
