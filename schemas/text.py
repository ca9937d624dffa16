"""Event-supplied text made safe for a terminal (rich markup) and for Slack mrkdwn.

Tag values, team names, series keys and dead-letter previews come from producers: they are
data and must be shown as text. Two sinks interpret text:

- a terminal through rich: ``[bold]`` / ``[/x]`` are markup (``[/x]`` with no open tag raises
  ``MarkupError``), and raw control characters (ANSI ``ESC[...``, ``\\r``, backspace) move the
  cursor or recolour the screen;
- Slack mrkdwn: ``<!channel>``, ``<@U123>`` and ``<http://x|label>`` are control sequences;
  Slack asks that exactly ``&``, ``<`` and ``>`` be escaped as ``&amp;``, ``&lt;``, ``&gt;``
  (https://api.slack.com/reference/surfaces/formatting#escaping).

>>> safe_terminal("[/x] team")
'\\\\[/x] team'
>>> safe_terminal("\\x1b[31mred\\x1b[0m")
'\\ufffd[31mred\\ufffd[0m'
>>> safe_mrkdwn("<!channel> a&b")
'&lt;!channel&gt; a&amp;b'
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls (except tab and newline), DEL, and C1 controls (0x80-0x9f, incl. the 8-bit CSI 0x9b)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# bidirectional overrides and isolates (Trojan Source): they reorder what a reader sees
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def plain_text(s: object, *, keep_newlines: bool = True) -> str:
    """``s`` as printable text: control characters and bidi overrides become ``\\uFFFD`` (visible, not acted on).

    >>> plain_text("a\\x1b[2Jb\\u202ec")
    'a\\ufffd[2Jb\\ufffdc'
    >>> plain_text("two\\nlines", keep_newlines=False)
    'two\\ufffdlines'
    """
    text = s if isinstance(s, str) else str(s)
    text = _BIDI.sub("\ufffd", _CONTROL.sub("\ufffd", text))
    if not keep_newlines:
        text = text.replace("\n", "\ufffd").replace("\t", " ")
    return text


def safe_terminal(s: object, *, keep_newlines: bool = False) -> str:
    """``s`` ready to embed in a rich markup string or a rich Table cell: markup escaped, controls replaced.

    Escaping happens after control replacement, so an ``ESC[`` sequence cannot leave an unescaped ``[``.

    >>> from rich.text import Text
    >>> from rich.markup import render
    >>> render(safe_terminal("[bold]x[/bold] [/oops]")).plain
    '[bold]x[/bold] [/oops]'
    """
    return escape(plain_text(s, keep_newlines=keep_newlines))


def safe_mrkdwn(s: object) -> str:
    """``s`` ready to embed in Slack mrkdwn: ``&``, ``<``, ``>`` escaped (Slack's rule), controls replaced.

    ``*bold*`` / ``_it_`` are left as Slack renders them (formatting only, no mention or link).

    >>> safe_mrkdwn("<https://evil|click> <@U1> &amp;")
    '&lt;https://evil|click&gt; &lt;@U1&gt; &amp;amp;'
    """
    text = plain_text(s)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
