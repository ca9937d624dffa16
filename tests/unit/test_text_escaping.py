"""Event text is data: shown as text in a terminal (rich) and in Slack mrkdwn, never interpreted."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from schemas.text import safe_mrkdwn, safe_terminal

HOSTILE = ["[/x]", "[bold]loud[/bold]", "[link=http://evil]x[/link]", "\x1b[2J\x1b[31mred", "<!channel>",
           "a\rb", "\\[/x]", "x\\", "[", "]"]


def _render(cell: str) -> str:
    buf = io.StringIO()
    t = Table()
    t.add_column("c")
    t.add_row(cell)
    Console(file=buf, width=200, color_system=None, force_terminal=False).print(t)
    return buf.getvalue()


@pytest.mark.parametrize("value", HOSTILE)
def test_terminal_shows_markup_as_text_and_never_raises(value: str) -> None:
    out = _render(safe_terminal(value))
    assert "\x1b" not in out and "\r" not in out
    # every printable character the producer sent is visible, in order
    visible = "".join(ch for ch in value if ch.isprintable())
    assert visible in out.replace("\ufffd", "")


def test_mrkdwn_escapes_exactly_slacks_three_characters() -> None:
    assert safe_mrkdwn("<!channel> & <@U1|x> *b*") == "&lt;!channel&gt; &amp; &lt;@U1|x&gt; *b*"
    assert "\x1b" not in safe_mrkdwn("\x1b[31m")
