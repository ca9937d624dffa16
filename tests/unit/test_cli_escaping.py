"""``burnguard alerts`` and ``deadletter list`` show event-supplied text as text (issue 9)."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from rich.console import Console

from schemas.alert import Alert, Contributor
from schemas.deadletter import DeadLetter
from sinks.store import AlertStore
from streams.commands.alerts import alerts_table
from streams.commands.deadletter import dead_letters_table

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
HOSTILE = ["team=[/x]|feature=f", "team=[bold red]loud[/]", "team=\x1b[2J\x1b[31mred", "team=<!channel>"]


def _printed(renderable) -> str:
    buf = io.StringIO()
    Console(file=buf, width=300, color_system=None, force_terminal=False).print(renderable)
    return buf.getvalue()


@pytest.mark.parametrize("key", HOSTILE)
def test_alerts_table_renders_series_key_as_text(key: str) -> None:
    a = Alert(series_key=key, metric="spend", detector="d", score=1.0, observed=2.0, baseline=1.0,
              expected_low=0.5, expected_high=1.5, window_start=T, window_end=T, started_at=T,
              contributors=[Contributor(key=key, impact_usd=1.0, observed=2.0, baseline=1.0)])
    out = _printed(alerts_table([a]))  # raised MarkupError for "[/x]" before the fix
    assert "\x1b" not in out
    assert "".join(ch for ch in key if ch.isprintable()) in out.replace("\ufffd", "")


@pytest.mark.parametrize("reason", ["bad tag [/x]", "ansi \x1b[31mred"])
def test_deadletter_table_renders_reason_and_preview_as_text(reason: str) -> None:
    store = AlertStore("sqlite://")
    store.save_dead_letter(DeadLetter.from_bytes(b'{"t": "\x1b[2J[/y]"}', reason=reason, topic="usage.llm"))
    out = _printed(dead_letters_table(store.dead_letter_rows(), limit=10))
    assert "\x1b" not in out
    assert "[/y]" in out and "".join(ch for ch in reason if ch.isprintable()) in out.replace("\ufffd", "")
