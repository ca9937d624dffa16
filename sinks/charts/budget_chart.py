"""The approval request's chart: cumulative spend vs the budget line over the period, with the forecast.

Drawn from a :class:`~guardrails.spend_series.SpendSeries` with matplotlib's object API on the Agg
canvas (no pyplot, no global figure state: safe in a worker thread): the observed cumulative
spend (solid), the stretch the tracker no longer holds (dotted, from 0 at the period start), the
forecast to the period's end (dashed) in its interval (shaded), the cap (and the cap with
grants, when higher), "now" and the projected exhaustion. Returns PNG bytes (800 x 450 px). A forecast
far above the cap is cut at :data:`MAX_FORECAST_SCALE` x the cap and its end value written instead.

Event-supplied text (the budget id) is shown literally: matplotlib's ``$...$`` maths is escaped.

>>> from datetime import datetime, timezone
>>> from guardrails.spend_series import SpendSeries
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> s = SpendSeries(budget_id="lab", period_start=t, period_end=t.replace(day=21), now=t.replace(hour=12),
...                 cap_usd=200, observed_t=[t.replace(hour=6), t.replace(hour=12)], observed_usd=[60, 120],
...                 observed_from=t.replace(hour=6), forecast_t=[t.replace(hour=12), t.replace(day=21)],
...                 forecast_usd=[120, 240], forecast_low=[120, 200], forecast_high=[120, 280])
>>> png = render_budget_chart(s)
>>> png[:8] == PNG_SIGNATURE, png_dimensions(png)
(True, (800, 450))
"""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from guardrails.spend_series import SpendSeries

__all__ = ["COLORS", "MAX_FORECAST_SCALE", "PNG_SIGNATURE", "budget_figure", "png_dimensions", "render_budget_chart",
           "x_of", "y_top"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The y axis shows the forecast up to this many times the cap (or the spend, if higher); above, it is cut.
MAX_FORECAST_SCALE = 2.5
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100
#: Line colours (RGB hex); the chart test looks for them in the pixels.
COLORS = {"observed": "#1f5fbf", "forecast": "#e07b00", "cap": "#c62828", "granted": "#8e24aa",
          "unheld": "#9e9e9e", "now": "#616161"}


def _text(s: object) -> str:
    """Literal text for matplotlib: ``$`` would start mathtext (and a malformed formula raises)."""
    return str(s).replace("$", r"\$")[:120]


def _usd(x: float, _pos: object = None) -> str:
    return rf"\${x:,.0f}" if abs(x) >= 100 else rf"\${x:,.2f}"


def _when_format(s: SpendSeries) -> str:
    """Times on the chart: the hour in a period of a day or less, the date and hour in a longer one."""
    return "%H:%M" if s.period_end - s.period_start <= timedelta(days=1) else "%b %d %H:%M"


def y_top(s: SpendSeries) -> tuple[float, bool]:
    """The highest value the y axis must show, and whether the forecast goes past it (and is cut).

    The cap, the cap with grants and the spend are always shown; the forecast and its band up to
    :data:`MAX_FORECAST_SCALE` times the largest of those: a spike extrapolated to the period's end
    (``$140,000`` forecast against a ``$100`` cap) would otherwise squash everything else onto the axis.
    """
    base = max([s.cap_usd, s.effective_cap_usd or 0.0, *s.observed_usd, 1.0])
    full = max([base, *s.forecast_high, *s.forecast_usd])
    limit = base * MAX_FORECAST_SCALE
    return (limit, True) if full > limit else (full, False)


def budget_figure(s: SpendSeries, title: str | None = None) -> Figure:
    """The chart as a matplotlib ``Figure`` on an Agg canvas (tests read its axes)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if s.observed_from > s.period_start:
        ax.plot([s.period_start, s.observed_from], [0.0, s.observed_usd[0]], linestyle=":", linewidth=1.5,
                color=COLORS["unheld"], label="earlier this period (not held)")
    ax.plot(s.observed_t, s.observed_usd, color=COLORS["observed"], linewidth=2.2, label="spend to date",
            marker="o" if len(s.observed_t) == 1 else None, gid="observed")
    if len(s.forecast_t) > 1:
        if s.has_interval:
            ax.fill_between(s.forecast_t, s.forecast_low, s.forecast_high, color=COLORS["forecast"], alpha=0.18,
                            linewidth=0, label="forecast interval (95 %)")
        ax.plot(s.forecast_t, s.forecast_usd, color=COLORS["forecast"], linewidth=2.0, linestyle="--",
                label=f"forecast ({_text(s.forecast_method.replace('_', ' '))})", gid="forecast")
    ax.axhline(s.cap_usd, color=COLORS["cap"], linewidth=1.6, label=f"cap {_usd(s.cap_usd)}")
    if s.effective_cap_usd is not None and s.effective_cap_usd > s.cap_usd:
        ax.axhline(s.effective_cap_usd, color=COLORS["granted"], linewidth=1.2, linestyle="-.",
                   label=f"cap + grants {_usd(s.effective_cap_usd)}")
    ax.axvline(s.now, color=COLORS["now"], linewidth=0.8, linestyle=":")
    if s.exhausted_at is not None and s.period_start <= s.exhausted_at <= s.period_end:
        ax.axvline(s.exhausted_at, color=COLORS["cap"], linewidth=0.8, linestyle="--")
        ax.annotate(f"exhausted {s.exhausted_at:{_when_format(s)}}", xy=(date2num(s.exhausted_at), s.cap_usd),
                    xytext=(4, 6), textcoords="offset points", fontsize=8, color=COLORS["cap"])
    top, clipped = y_top(s)
    if clipped:  # a runaway forecast would flatten the cap and the spend: cut it, say where it ends
        end = s.forecast_usd[-1]
        ax.annotate(f"forecast {_usd(end)} at the period's end (off the chart)", xy=(1.0, 1.0),
                    xycoords="axes fraction", xytext=(-6, -14), textcoords="offset points", ha="right",
                    fontsize=8, color=COLORS["forecast"], gid="forecast_end", zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9, "pad": 1.5})
    ax.set_ylim(0, top * 1.12)
    ax.set_xlim(date2num(s.period_start), date2num(s.period_end))
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    decimals = 0 if top >= 20 else 2
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _pos: rf"\${x:,.{decimals}f}"))
    ax.grid(True, alpha=0.25)
    ax.set_ylabel("cumulative spend (USD)")
    ax.set_xlabel("UTC")
    heading = title or f"{s.budget_id}: spend ${s.spent_usd:,.2f} of ${s.cap_usd:,.2f} cap"
    ax.set_title(_text(heading), fontsize=11, loc="left")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    return fig


def render_budget_chart(s: SpendSeries, title: str | None = None) -> bytes:
    """PNG bytes of :func:`budget_figure`."""
    fig = budget_figure(s, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def png_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (``ValueError`` if ``data`` is not a PNG)."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def x_of(fig: Figure, t: datetime) -> float:
    """Pixel column of time ``t`` in the figure's PNG (tests)."""
    ax = fig.axes[0]
    return float(ax.transData.transform((date2num(t), 0.0))[0])
