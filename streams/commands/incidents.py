"""``burnguard incidents`` / ``ack`` / ``snooze`` / ``resolve``: on-call incidents without Slack.

The commands queue the same acknowledge / snooze / resolve a Slack button does (table
``incident_commands``); the worker applies them to the incident and updates its Slack message.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from detectors.incidents.silence import Acknowledge, Command, Resolve, Snooze, parse_duration
from detectors.incidents.summary import where_label
from schemas.incident import IncidentRecord
from schemas.text import safe_terminal
from sinks.incident_store import IncidentStore, command_kind
from sinks.migrations import upgrade
from streams.settings import Settings

STATES = ("open", "pending", "firing", "resolved", "all")


def _money(x: float | None) -> str:
    return "" if x is None else f"${x:,.2f}"


def incidents_table(rows: list[tuple[IncidentRecord, list[Command]]], title: str) -> Table:
    """Incidents as a table; titles and keys are producer text, shown as text (no markup, no controls)."""
    table = Table(title=title)
    for col in ("id", "status", "since (UTC)", "what", "where", "excess $/h", "total $", "alerts", "owner"):
        table.add_column(col)
    for rec, pending in rows:
        owner = []
        if rec.acked_by:
            owner.append(f"ack {rec.acked_by}")
        if rec.snoozed_until and rec.status != "resolved":
            owner.append(f"snoozed to {rec.snoozed_until:%m-%d %H:%M}")
        if rec.resolved_by:
            owner.append(f"resolved by {rec.resolved_by}")
        owner += [f"{command_kind(c)} {c.by} (queued)" for c in pending]
        table.add_row(rec.id, rec.status, f"{rec.started_at:%Y-%m-%d %H:%M}", safe_terminal(rec.title),
                      safe_terminal(where_label(rec.subject_key)), _money(rec.excess_usd_per_hour),
                      _money(rec.excess_usd_total), str(rec.alert_count), safe_terminal(", ".join(owner)))
    return table


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _open_store() -> IncidentStore:
    """The store at BURNGUARD_DATABASE_URL, upgraded to the newest schema (as the guardrail commands do)."""
    url = Settings().database_url
    upgrade(url)
    return IncidentStore(url, schema_wait=0)


def run_list(args: argparse.Namespace) -> int:
    try:
        store = _open_store()
    except SQLAlchemyError as err:
        return _fail(f"cannot read incidents from the database ({type(err).__name__}); check BURNGUARD_DATABASE_URL")
    try:
        recs = store.incidents(state=None if args.state == "all" else args.state, limit=args.limit)
        rows = [(r, store.pending_for(r.id)) for r in recs]
    except SQLAlchemyError as err:
        return _fail(f"cannot read incidents from the database ({type(err).__name__}); check BURNGUARD_DATABASE_URL")
    finally:
        store.close()
    Console().print(incidents_table(rows, f"incidents ({args.state})"))
    return 0


def _queue(args: argparse.Namespace, make: type) -> int:
    now = datetime.now(timezone.utc)
    user = args.user or getpass.getuser()
    if make is Snooze:
        try:
            cmd: Command = Snooze(args.id, until=now + parse_duration(args.duration), by=user, at=now)
        except ValueError as err:
            return _fail(str(err))
    else:
        cmd = make(args.id, by=user, at=now)
    try:
        store = _open_store()
    except SQLAlchemyError as err:
        return _fail(f"cannot reach the database ({type(err).__name__}); check BURNGUARD_DATABASE_URL")
    try:
        rec = store.get(args.id)
        if rec is None:
            return _fail(f"no incident {args.id!r} (burnguard incidents lists them)", 1)
        if isinstance(cmd, Acknowledge) and rec.acked_by:
            print(f"{rec.id} was already acknowledged by {safe_terminal(rec.acked_by)}")
            return 0
        if isinstance(cmd, Resolve) and rec.status == "resolved":
            print(f"{rec.id} is already resolved")
            return 0
        store.add_command(cmd, source="cli")
    except SQLAlchemyError as err:
        return _fail(f"cannot reach the database ({type(err).__name__}); check BURNGUARD_DATABASE_URL")
    finally:
        store.close()
    done = {Acknowledge: "acknowledged", Resolve: "resolved", Snooze: "snoozed"}[make]
    extra = f" until {cmd.until:%Y-%m-%d %H:%M} UTC" if isinstance(cmd, Snooze) else ""
    print(f"{rec.id} {done}{extra} as {safe_terminal(user)} (queued; the worker applies it and updates Slack)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="list incidents (alerts grouped by cause)")
    p.add_argument("--state", choices=STATES, default="open", help="open = pending or firing (default)")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=run_list)
    for name, make, helptext in (("ack", Acknowledge, "acknowledge an incident (stops reminders)"),
                                 ("resolve", Resolve, "resolve an incident by hand")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("id", help="incident id (burnguard incidents)")
        q.add_argument("--as", dest="user", default=None, help="who (default: your login name)")
        q.set_defaults(func=lambda args, make=make: _queue(args, make))
    q = sub.add_parser("snooze", help="silence an incident's notifications for a while")
    q.add_argument("id", help="incident id (burnguard incidents)")
    q.add_argument("duration", help="30m, 1h, 24h, 2d")
    q.add_argument("--as", dest="user", default=None, help="who (default: your login name)")
    q.set_defaults(func=lambda args: _queue(args, Snooze))
