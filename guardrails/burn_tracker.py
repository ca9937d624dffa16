"""Per-budget burn state: trailing window sums, period-to-date spend, incidents and forecast.

One :class:`BurnTracker` per budget id. Feed it every closed 1-minute bucket of spend that
falls in the budget's scope (several allocation keys add into the same minute); each call
evaluates the SRE multi-window burn-rate rules (:func:`guardrails.burn_rate.evaluate`) at
"now" = the end of the newest bucket seen, and returns *transitions* only:

- ``firing`` once when a rule starts burning, ``resolved`` once when it stops (its long or
  short window back below the factor);
- ``threshold_80``, ``threshold_100``, ...: once per period when the period-to-date spend
  crosses that fraction of the cap (status ``firing``; they reset with the period).

State is small plain data (``to_state``): a 1-minute ring long enough for the windows up
to 1 h (exact sums), a coarse ring (5-minute slots by default, at most 73 slots) for longer
windows, whose oldest, partly covered slot is pro-rated by time (exact whenever "now" and
the window are slot-aligned, otherwise off by less than one slot's spend), the period-to-date
spend, the fired thresholds and the open incidents. About 1.3 KB encoded with the default rules.

Projection (cheap and robust, documented in ``docs/budgets.md``): the spend rate over the
longest rule window (6 h by default; over the time seen so far, at least 1 h, while the
tracker is younger than the window) is carried to the end of the period:
``projected = period_spent + rate * (period_end - now)``; exhaustion is ``now`` when the cap
is already spent, ``now + (cap - spent) / rate`` when that is before the period ends, else
``None``.

>>> from datetime import datetime, timezone, timedelta
>>> from guardrails.budget_book import BudgetSpec
>>> from guardrails.burn_rate import DEFAULT_RULES
>>> spec = BudgetSpec("team-a", 3000.0, "month", DEFAULT_RULES, (0.8, 1.0), ())
>>> tr = BurnTracker.from_spec(spec)
>>> t0 = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
>>> events = [e for m in range(40) for e in tr.observe(t0 + timedelta(minutes=m), 2.6)]
>>> [(e.rule, e.status, e.at.strftime("%H:%M"), round(e.long_rate, 2)) for e in events]
[('fast', 'firing', '12:24', 14.98)]
>>> tr.advance(t0 + timedelta(minutes=43))      # spend stopped at 12:40; 5 min still burning
[]
>>> [(e.rule, e.status, e.at.strftime("%H:%M")) for e in tr.advance(t0 + timedelta(minutes=44))]
[('fast', 'resolved', '12:44')]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, get_args

from detectors.statecheck import NUM, Spec, fields, floats, mapping
from guardrails.burn_rate import DEFAULT_RULES, Budget, BurnRule, burn_rate, evaluate, needed_windows
from guardrails.budget_book import DEFAULT_THRESHOLDS, BudgetSpec, Period, period_bounds
from guardrails.burn_event import BurnEvent, threshold_name

if TYPE_CHECKING:
    from guardrails.forecast import Forecast

__all__ = ["BurnEvent", "BurnTracker", "threshold_name"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Windows up to this length are summed exactly from the 1-minute ring.
FINE_MAX_S = 3600
#: Upper bound on coarse slots (the slot length grows for longer windows to keep state small).
MAX_COARSE_SLOTS = 72
#: Minimum coarse slot, minutes.
MIN_SLOT_MIN = 5
#: While the tracker has seen less than the forecast window, its rate is averaged over at least this.
MIN_RATE_SPAN_S = 3600
OPT_INT = (int, type(None))


def _minute(t: datetime) -> int:
    """Whole minutes since the epoch (floor); naive datetimes are UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return math.floor((t - _EPOCH).total_seconds() / 60)


def _at(minute: int) -> datetime:
    return _EPOCH + timedelta(minutes=minute)


class BurnTracker:
    """State of one budget. Build with :meth:`from_spec`; feed with :meth:`observe`.

    Its table state is :meth:`to_state`; the rings' geometry follows the
    rules' windows, so a week-long window does not make the state larger.
    """

    __slots__ = ("budget_id", "cap_usd", "period", "rules", "thresholds",
                 "_fine", "_coarse", "_k", "_head", "_origin",
                 "_pstart", "_pend", "_spent", "_fired", "_active")

    def __init__(self, budget_id: str, cap_usd: float, period: Period = "month",
                 rules: Sequence[BurnRule] = DEFAULT_RULES,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> None:
        self.budget_id = budget_id
        self.cap_usd = float(cap_usd)
        self.period: Period = period
        self.rules: tuple[BurnRule, ...] = tuple(rules)
        self.thresholds: tuple[float, ...] = tuple(sorted(thresholds))
        self._head: int | None = None  # newest bucket start seen, minutes since epoch
        self._origin: int | None = None  # oldest bucket start seen
        self._pstart = 0  # current period [start, end), minutes since epoch
        self._pend = 0
        self._spent = 0.0  # period-to-date spend
        self._fired = 0  # bit i: thresholds[i] fired this period
        self._active: dict[str, int] = {}  # rule name -> minute its incident opened
        self._geometry()

    @classmethod
    def from_spec(cls, spec: BudgetSpec) -> "BurnTracker":
        return cls(spec.id, spec.cap_usd, spec.period, spec.rules, spec.thresholds)

    def configure(self, spec: BudgetSpec) -> None:
        """Apply a changed budget (cap grant, new thresholds or rules) keeping the state.

        Trailing sums survive unless the rules' windows change the ring geometry (then they
        restart empty). Incidents of rules that no longer exist are dropped without an event.
        """
        if (spec.id, float(spec.cap_usd), spec.period, tuple(spec.rules), tuple(sorted(spec.thresholds))) == \
                (self.budget_id, self.cap_usd, self.period, self.rules, self.thresholds):
            return  # unchanged: cheap enough to call before every observe
        old = (len(self._fine), len(self._coarse), self._k)
        self.budget_id, self.cap_usd = spec.id, float(spec.cap_usd)
        new_thresholds = tuple(sorted(spec.thresholds))
        if new_thresholds != self.thresholds:
            fired = {t for i, t in enumerate(self.thresholds) if self._fired >> i & 1}
            self._fired = sum(1 << i for i, t in enumerate(new_thresholds) if t in fired)
            self.thresholds = new_thresholds
        self.rules = tuple(spec.rules)
        self._active = {n: m for n, m in self._active.items() if any(r.name == n for r in self.rules)}
        if spec.period != self.period:
            self.period = spec.period  # period-to-date restarts in the new period containing "now"
            if self._head is not None:
                self._new_period(self._head)
        fine, coarse = self._fine, self._coarse
        self._geometry()
        if (len(self._fine), len(self._coarse), self._k) == old:
            self._fine, self._coarse = fine, coarse

    def _rate_window(self) -> int:
        """The window (s) projections and threshold events take their rate over: the longest rule window,
        or :data:`MIN_RATE_SPAN_S` for a budget without burn-rate rules (thresholds only)."""
        return max(needed_windows(self.rules)) if self.rules else MIN_RATE_SPAN_S

    def _geometry(self) -> None:
        # the rings hold every window the rules need and the rate window (a rule-less budget still projects)
        windows = needed_windows(self.rules) if self.rules else [self._rate_window()]
        for w in windows:
            if w % 60:
                raise ValueError(f"window {w}s is not a whole number of minutes")
        n_max = max(windows) // 60
        fine = max((w // 60 for w in windows if w <= FINE_MAX_S), default=1)
        self._fine = [0.0] * fine
        if n_max <= fine:
            self._k, self._coarse = 1, []
        else:
            self._k = max(MIN_SLOT_MIN, -(-n_max // MAX_COARSE_SLOTS))
            self._coarse = [0.0] * (-(-n_max // self._k) + 1)

    # ------------------------------------------------------------------ table state (streams.state.codec)

    STATE_TAG = "burn_tracker"
    STATE_VERSION = 1
    _STATE = Spec({
        "budget_id": str, "cap_usd": NUM, "period": str, "rules": tuple, "thresholds": tuple, "_fine": list,
        "_coarse": list, "_k": int, "_head": OPT_INT, "_origin": OPT_INT, "_pstart": int, "_pend": int,
        "_spent": NUM, "_fired": int, "_active": dict})

    def to_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._STATE.order}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "BurnTracker":
        """Rebuild from :meth:`to_state` without ``__init__``; the rings must have the geometry the
        stored rules give (at most 60 + 74 slots whatever the windows)."""
        fields(state, cls._STATE)
        if state["period"] not in get_args(Period):
            raise ValueError(f"unknown period {state['period'][:32]!r}")
        if not all(type(r) is BurnRule for r in state["rules"]):
            raise ValueError("rules must be BurnRule values")
        if not all(type(t) in (int, float) for t in state["thresholds"]):
            raise ValueError("thresholds must be numbers")
        mapping(state["_active"], "_active", str, int)
        tr = cls.__new__(cls)
        tr.rules = state["rules"]
        tr._geometry()  # bounded: the fine ring <= 60 slots, the coarse ring <= MAX_COARSE_SLOTS + 2
        want = (len(tr._fine), len(tr._coarse), tr._k)
        floats(state["_fine"], "_fine", length=want[0])
        floats(state["_coarse"], "_coarse", length=want[1])
        if state["_k"] != want[2]:
            raise ValueError(f"rings {len(state['_fine'])}/{len(state['_coarse'])}/{state['_k']} do not match "
                             f"the rules' geometry {want}")
        if state["_head"] is not None and (state["_pend"] <= state["_pstart"] or state["_origin"] is None):
            raise ValueError("a started tracker needs a period and an origin")
        for k, v in state.items():
            setattr(tr, k, v)
        return tr

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BurnTracker) and self.to_state() == other.to_state()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        now = self.now
        return (f"BurnTracker({self.budget_id!r}, spent={self._spent:.2f}/{self.cap_usd:g} {self.period}, "
                f"now={now.isoformat() if now else None}, active={sorted(self._active)})")

    # ------------------------------------------------------------------ reading

    @property
    def now(self) -> datetime | None:
        """End of the newest bucket seen (the tracker's event-time clock)."""
        return None if self._head is None else _at(self._head + 1)

    @property
    def period_spent_usd(self) -> float:
        return self._spent

    @property
    def period_start(self) -> datetime | None:
        return _at(self._pstart) if self._pend else None

    @property
    def period_end(self) -> datetime | None:
        return _at(self._pend) if self._pend else None

    @property
    def active(self) -> dict[str, datetime]:
        """Open incidents: rule name -> when it started firing."""
        return {n: _at(m) for n, m in self._active.items()}

    def window_sum(self, window_s: int) -> float:
        """Spend in the trailing window ``(now - window_s, now]`` (bucket starts), from the rings."""
        head = self._head
        if head is None:
            return 0.0
        n = window_s // 60
        fine = self._fine
        if n <= len(fine):
            f = len(fine)
            return sum(fine[(head - i) % f] for i in range(n))
        coarse, k = self._coarse, self._k
        c = len(coarse)
        n = min(n, (c - 1) * k)  # never read a slot the ring no longer holds
        start = head - n + 1
        cs, ch = start // k, head // k
        total = sum(coarse[j % c] for j in range(cs + 1, ch + 1))
        return total + coarse[cs % c] * (k - (start - cs * k)) / k

    def window_sums(self) -> dict[int, float]:
        """Sums for every window the rules need (the input of :func:`guardrails.burn_rate.evaluate`)."""
        return {w: self.window_sum(w) for w in needed_windows(self.rules)}

    def burn_rates(self) -> dict[int, float]:
        """Burn rate of every window the rules need (spend ÷ the even pace that lands on the cap)."""
        if not self._pend:
            return {}
        budget = self._budget()
        return {w: burn_rate(s, w, budget) for w, s in self.window_sums().items()}

    def _budget(self) -> Budget:
        return Budget(self.cap_usd, float((self._pend - self._pstart) * 60))

    def projection(self) -> tuple[float, datetime | None]:
        """(projected end-of-period spend, projected exhaustion time or ``None``); see the module doc."""
        if self._head is None or not self._pend:
            return self._spent, None
        now_m = self._head + 1
        w = self._rate_window()
        seen_s = (now_m - (self._origin if self._origin is not None else self._head)) * 60
        span = min(w, max(seen_s, min(w, MIN_RATE_SPAN_S)))
        rate = max(self.window_sum(w), 0.0) / span  # $/s
        remaining = max(self._pend - now_m, 0) * 60
        projected = self._spent + rate * remaining
        if self._spent >= self.cap_usd:
            return projected, _at(now_m)
        if rate > 0:
            secs = (self.cap_usd - self._spent) / rate
            if secs <= remaining:
                return projected, _at(now_m) + timedelta(seconds=secs)
        return projected, None

    def forecast(self) -> tuple["Forecast", datetime | None]:
        """Optional statsmodels forecast (:func:`guardrails.forecast.forecast_period`, Holt damped trend).

        History = the coarse ring's complete slots since the tracker started (5-minute steps by
        default, so at most the last 6 h); returns the forecast and the projected exhaustion
        time (``None`` if not within the period). Slower (a model fit, milliseconds) than
        :meth:`projection`: call it when building an escalation, not per bucket.
        """
        from guardrails.forecast import forecast_period

        if self._head is None or not self._pend:
            return forecast_period([], self._spent, self.cap_usd, 0), None
        now_m = self._head + 1
        ring, k = (self._coarse, self._k) if self._coarse else (self._fine, 1)
        n = len(ring)
        last = now_m // k - 1  # newest complete step
        first = max(last - (n - 2 if ring is self._coarse else n - 1),
                    -(-(self._origin if self._origin is not None else self._head) // k))
        history = [ring[j % n] for j in range(first, last + 1)]
        steps = -(-max(self._pend - now_m, 0) // k)
        f = forecast_period(history, self._spent, self.cap_usd, steps)
        at = None if f.exhausted_in_steps is None else _at(now_m + f.exhausted_in_steps * k)
        return f, at

    # ------------------------------------------------------------------ writing

    def observe(self, bucket_start: datetime, spend_usd: float) -> list[BurnEvent]:
        """Add one closed bucket's spend for this budget and return the transitions it causes.

        Calls with the same ``bucket_start`` add up (several keys of one budget). Buckets may
        arrive out of order: one within the longest window updates the trailing sums; an
        older one still counts for period-to-date spend if it is in the current period (a
        bucket of an earlier period is ignored: that period is closed).
        """
        m = _minute(bucket_start)
        self._advance_to(m)
        head = self._head
        assert head is not None
        spend = float(spend_usd)
        fine = self._fine
        if head - m < len(fine):
            fine[m % len(fine)] += spend
        coarse, k = self._coarse, self._k
        if coarse and head // k - m // k < len(coarse):
            coarse[(m // k) % len(coarse)] += spend
        if self._origin is None or m < self._origin:
            self._origin = m
        if self._pstart <= m < self._pend:
            self._spent += spend
        return self._transitions()

    def advance(self, now: datetime) -> list[BurnEvent]:
        """Move the clock to ``now`` without spend (no bucket closed: nothing was spent).

        Call it on a timer (e.g. each minute) so an incident resolves even when spend stops
        completely and no more buckets arrive. A ``now`` at or before the clock does nothing.
        """
        if self._head is None:
            return []
        m = _minute(now) - 1  # the last minute that has ended by `now`
        if m <= self._head:
            return []
        self._advance_to(m)
        return self._transitions()

    def _advance_to(self, m: int) -> None:
        head = self._head
        if head is None:
            self._head = m
            self._origin = m
            self._new_period(m)
            return
        if m <= head:
            return
        fine = self._fine
        f = len(fine)
        for i in range(head + 1, head + 1 + min(m - head, f)):
            fine[i % f] = 0.0
        coarse, k = self._coarse, self._k
        if coarse:
            c = len(coarse)
            ch, cm = head // k, m // k
            for j in range(ch + 1, ch + 1 + min(cm - ch, c)):
                coarse[j % c] = 0.0
        self._head = m
        if m >= self._pend:
            self._new_period(m)

    def _new_period(self, m: int) -> None:
        start, end = period_bounds(self.period, _at(m))
        self._pstart, self._pend = _minute(start), _minute(end)
        self._spent, self._fired = 0.0, 0

    def _transitions(self) -> list[BurnEvent]:
        head = self._head
        assert head is not None
        now_m = head + 1
        budget = self._budget()
        sums = self.window_sums()
        burning = {a.rule.name: a for a in evaluate(sums, budget, self.rules)}
        out: list[BurnEvent] = []
        proj: tuple[float, datetime | None] | None = None
        for r in self.rules:
            alert = burning.get(r.name)
            opened = self._active.get(r.name)
            if (alert is None) == (opened is None):
                continue
            if proj is None:
                proj = self.projection()
            if alert is not None:
                self._active[r.name] = opened = now_m
                status: Literal["firing", "resolved"] = "firing"
                lr, sr = alert.long_rate, alert.short_rate
            else:
                del self._active[r.name]
                status = "resolved"
                lr, sr = burn_rate(sums[r.long_s], r.long_s, budget), burn_rate(sums[r.short_s], r.short_s, budget)
            assert opened is not None
            out.append(self._event(r.name, r.severity, status, lr, sr, proj, opened))
        for i, t in enumerate(self.thresholds):
            if not self._fired >> i & 1 and self._spent >= t * self.cap_usd:
                self._fired |= 1 << i
                if proj is None:
                    proj = self.projection()
                elapsed = max(now_m - self._pstart, 1) * 60
                ptd_rate = self._spent / (budget.rate_per_s * elapsed)
                w = self._rate_window()
                out.append(self._event(threshold_name(t), "page" if t >= 1.0 else "ticket", "firing", ptd_rate,
                                       burn_rate(self.window_sum(w), w, budget), proj, now_m,
                                       kind="threshold", threshold=t))
        return out

    def _event(self, rule: str, severity: str, status: Literal["firing", "resolved"], long_rate: float,
               short_rate: float, proj: tuple[float, datetime | None], opened: int,
               kind: Literal["burn_rate", "threshold"] = "burn_rate", threshold: float | None = None) -> BurnEvent:
        assert self._head is not None
        return BurnEvent(self.budget_id, rule, severity, status, _at(self._head + 1), long_rate, short_rate,
                         self._spent, self.cap_usd, proj[0], proj[1], _at(opened), _at(self._pstart),
                         _at(self._pend), kind, threshold)
