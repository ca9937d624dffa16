"""``burnguard alerts``: list stored alerts."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from schemas.alert import Alert
from schemas.text import safe_terminal
from sinks.store import AlertStore
from streams.settings import Settings


def alerts_table(alerts: list[Alert], title: str = "alerts") -> Table:
    """Alerts as a table; series keys and metrics come from events, so they are shown as text."""
    table = Table(title=title)
    for col in ("started (UTC)", "status", "series", "metric", "observed", "baseline", "×", "score"):
        table.add_column(col)
    for a in alerts:
        table.add_row(a.started_at.strftime("%Y-%m-%d %H:%M"), a.status, safe_terminal(a.series_key), safe_terminal(a.metric),
                      f"{a.observed:.4g}", f"{a.baseline:.4g}", f"{a.ratio:.1f}", f"{a.score:.6f}")
    return table


def run(args: argparse.Namespace) -> int:
    store = AlertStore(Settings().database_url)
    try:
        Console().print(alerts_table(store.alerts(status=args.status)))
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="list stored alerts")
    p.add_argument("--status", choices=["firing", "resolved"], default=None)
    p.set_defaults(func=run)
