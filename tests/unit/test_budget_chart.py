"""The approval request's chart, rendered for a hand-worked series and read back from its pixels.

A day budget of $200 spends 15 $/h from 04:00 to 12:00 (0.25 $ a minute): $120 spent at noon, the
mean-rate forecast carries 15 $/h to midnight ($300) and crosses the cap after (200 - 120) / 15 h =
5 h 20 min, at 17:20. The PNG must be 800 x 450 and show spend (blue) only up to noon, the forecast
(orange) after it, and the cap (red) at $200.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from guardrails.budget_book import BudgetSpec
from guardrails.burn_rate import DEFAULT_RULES
from guardrails.burn_tracker import BurnTracker
from guardrails.spend_series import SpendSeries, series_from_overrun, series_from_tracker
from schemas.overrun import Overrun
from sinks.charts.budget_chart import COLORS, budget_figure, png_dimensions, render_budget_chart, x_of

DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
NOON = DAY.replace(hour=12)


def hand_worked_tracker(budget_id: str = "lab") -> BurnTracker:
    tr = BurnTracker.from_spec(BudgetSpec(budget_id, 200.0, "day", DEFAULT_RULES, (0.8, 1.0), ()))
    for m in range(8 * 60):
        tr.observe(DAY.replace(hour=4) + timedelta(minutes=m), 0.25)
    return tr


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def columns_with(img: Image.Image, colour: str, tol: int = 40) -> set[int]:
    """Pixel columns holding at least one pixel within ``tol`` of ``colour`` (per channel)."""
    want = rgb(colour)
    px = img.convert("RGB").load()
    w, h = img.size
    return {x for x in range(w) for y in range(h)
            if all(abs(a - b) <= tol for a, b in zip(px[x, y], want))}


def test_series_of_the_hand_worked_day() -> None:
    s = series_from_tracker(hand_worked_tracker())
    assert s.now == NOON and s.observed_usd[-1] == pytest.approx(120.0)
    assert s.observed_from == DAY.replace(hour=6)  # 6 h of trailing sums held: $30 at 06:00
    assert s.observed_usd[0] == pytest.approx(30.0)
    assert s.forecast_t[0] == NOON and s.forecast_t[-1] == DAY + timedelta(days=1)
    assert s.forecast_usd[-1] == pytest.approx(300.0)
    assert s.exhausted_at == DAY.replace(hour=17, minute=20)
    assert all(lo <= mid <= hi for lo, mid, hi in zip(s.forecast_low, s.forecast_usd, s.forecast_high))


def test_png_size_dimensions_and_forecast_drawn_past_the_last_observation() -> None:
    s = series_from_tracker(hand_worked_tracker())
    png = render_budget_chart(s)
    assert png_dimensions(png) == (800, 450)
    assert 10_000 < len(png) < 400_000, len(png)
    img = Image.open(io.BytesIO(png))
    assert img.size == (800, 450) and img.format == "PNG"
    fig = budget_figure(s)  # the same layout: where noon, midnight and $200 are in pixels
    noon_x, end_x = x_of(fig, NOON), x_of(fig, DAY + timedelta(days=1))
    blue, orange = columns_with(img, COLORS["observed"]), columns_with(img, COLORS["forecast"])
    assert blue and max(blue) <= noon_x + 3, (max(blue), noon_x)  # no spend drawn after the last observation
    past = {x for x in orange if x > noon_x + 3}
    assert past, "no forecast drawn past the last observation"
    assert max(past) >= end_x - 5 and min(past) <= noon_x + 15  # from noon to the period's end
    cap_y = 450 - fig.axes[0].transData.transform((0.0, 200.0))[1]
    px = img.convert("RGB").load()
    red = rgb(COLORS["cap"])
    red_in_row = sum(1 for x in range(int(noon_x) - 200, int(end_x))
                     if any(all(abs(a - b) <= 40 for a, b in zip(px[x, int(cap_y) + dy], red)) for dy in (-1, 0, 1)))
    assert red_in_row > 0.8 * (end_x - noon_x + 200), red_in_row  # the cap line crosses the plot at $200


def test_event_text_with_dollars_and_mentions_renders_literally() -> None:
    s = series_from_tracker(hand_worked_tracker("team-$x^{2}$ <!channel>"))
    fig = budget_figure(s)
    assert fig.axes[0].get_title(loc="left").startswith(r"team-\$x^{2}\$ <!channel>")
    assert png_dimensions(render_budget_chart(s)) == (800, 450)  # mathtext would have raised on $x^{2}$ ... ok


def test_a_series_from_an_overrun_alone_draws_a_point_and_a_line_to_the_forecast() -> None:
    ov = Overrun(overrun_id="o", budget_id="b", trigger="threshold", rule="threshold_100", period="day",
                 period_start=DAY, period_end=DAY + timedelta(days=1), at=NOON, started_at=NOON, cap_usd=100,
                 spend_usd=100, forecast_usd=180, overrun_usd=80, overrun_pct=80)
    s = series_from_overrun(ov)
    assert (s.observed_usd, s.forecast_usd, s.has_interval) == ([100.0], [100.0, 180.0], False)
    png = render_budget_chart(s)
    img = Image.open(io.BytesIO(png))
    fig = budget_figure(s)
    assert max(columns_with(img, COLORS["forecast"])) > x_of(fig, NOON) + 100


def test_series_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="same"):
        SpendSeries(budget_id="b", period_start=DAY, period_end=DAY + timedelta(days=1), now=NOON, cap_usd=1,
                    observed_t=[NOON], observed_usd=[1.0, 2.0], observed_from=NOON)


def burst_tracker() -> BurnTracker:
    """10 requests of $23.40 at 14:03 on a $100 day budget: $234 spent, and a mean-rate forecast that carries
    $234 a minute to midnight (~$140,000): far above anything else on the chart."""
    tr = BurnTracker.from_spec(BudgetSpec("shop", 100.0, "day", [], (1.0,), ()))
    for i in range(10):
        tr.observe(DAY.replace(hour=14, minute=3) + timedelta(milliseconds=100 * i), 23.4)
    return tr


def test_a_runaway_forecast_is_cut_so_the_cap_and_the_spend_stay_readable() -> None:
    s = series_from_tracker(burst_tracker())
    assert s.spent_usd == pytest.approx(234.0) and s.forecast_usd[-1] > 100_000
    fig = budget_figure(s)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == pytest.approx(234.0 * 2.5 * 1.12)  # the spend x 2.5, plus the margin
    [note] = [t for t in ax.texts if t.get_gid() == "forecast_end"]
    assert note.get_text() == rf"forecast \${s.forecast_usd[-1]:,.0f} at the period's end (off the chart)"
    img = Image.open(io.BytesIO(render_budget_chart(s)))
    bottom = 450 - ax.transData.transform((0.0, 0.0))[1]
    top = 450 - ax.transData.transform((0.0, ax.get_ylim()[1]))[1]
    px = img.convert("RGB").load()
    red_rows = {y for y in range(450) for x in range(100, 700, 50)
                if all(abs(a - b) <= 40 for a, b in zip(px[x, y], rgb(COLORS["cap"])))}
    assert red_rows, "no cap line"
    cap_height = (bottom - max(red_rows)) / (bottom - top)  # the cap's height as a share of the plot
    assert 0.12 < cap_height < 0.2, cap_height  # $100 of $655: 15 % up (it was at the axis: 0.07 % up)


def test_the_exhaustion_time_has_its_date_in_a_month_budget() -> None:
    tr = BurnTracker.from_spec(BudgetSpec("m", 4000.0, "month", DEFAULT_RULES, (0.8, 1.0), ()))
    for m in range(600):
        tr.observe(DAY.replace(hour=2) + timedelta(minutes=m), 7.0)
    s = series_from_tracker(tr)
    labels = [t.get_text() for t in budget_figure(s).axes[0].texts if t.get_text().startswith("exhausted")]
    assert labels == [f"exhausted {s.exhausted_at:%b %d %H:%M}"] and labels[0].startswith("exhausted Nov 2")
    day = [t.get_text() for t in budget_figure(series_from_tracker(hand_worked_tracker())).axes[0].texts]
    assert "exhausted 17:20" in day
