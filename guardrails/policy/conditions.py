"""Conditions of a rule's ``when``: each a number (or name) read off the overrun, compared with operators.

Every condition given must hold (AND). A condition whose value is missing (no anomaly score
on a budget overrun, no exhaustion within the period) does not hold. Times (``hour_utc``,
``weekday``) are the overrun's event time, so a replay decides as the live stream did.

>>> from guardrails.policy.conditions import conditions
>>> cond = conditions.get("overrun_usd").build({"lte": 100})
>>> cond.describe()
'overrun_usd <= 100'
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from guardrails.policy.operators import SYMBOLS, ComparisonBase, comparison
from guardrails.policy.registry import Registry
from schemas.overrun import Overrun

__all__ = ["Condition", "WEEKDAYS", "conditions"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Condition:
    """A named value of an overrun and the comparison it must pass."""

    name: ClassVar[str]
    schema: ClassVar[type[ComparisonBase]]
    unit: ClassVar[str] = ""

    def __init__(self, spec: ComparisonBase) -> None:
        self.spec = spec

    @classmethod
    def build(cls, raw: Any) -> "Condition":
        """Validate ``raw`` (the YAML value) against :attr:`schema` (raises ``ValidationError``)."""
        return cls(cls.schema.model_validate(raw))

    def value(self, ov: Overrun) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def test(self, ov: Overrun) -> tuple[bool, Any]:
        """(holds, the actual value)."""
        actual = self.value(ov)
        return self.spec.test(actual), actual

    def describe(self) -> str:
        return f"{self.name} {self.spec.describe()}"

    def show(self, actual: Any) -> str:
        """The actual value for an explanation (``missing`` when there is none)."""
        if actual is None:
            return "missing"
        if isinstance(actual, float):
            return f"{actual:.6g}"
        return str(actual)


conditions: Registry[type[Condition]] = Registry("condition")

Number = comparison(float, name="NumberComparison")
Hour = comparison(Annotated[int, Field(ge=0, le=23)], name="HourComparison")


def _weekday(v: Any) -> Any:
    if isinstance(v, str) and v.strip().lower()[:3] in WEEKDAYS:
        return WEEKDAYS.index(v.strip().lower()[:3])
    return v


WeekdayCmp = comparison(Annotated[int, BeforeValidator(_weekday), Field(ge=0, le=6)], name="WeekdayComparison")
Name = comparison(str, ("eq", "in"), name="NameComparison")
TriggerName = comparison(Literal["threshold", "burn_rate", "anomaly"], ("eq", "in"), name="TriggerComparison")


@conditions.register("overrun_usd")
class OverrunUsd(Condition):
    """Spend above the cap in USD: the larger of actual and forecast end-of-period spend, minus the cap.

    ```yaml
    when: {overrun_usd: {lte: 100}}
    ```
    """

    schema = Number
    unit = "USD"

    def value(self, ov: Overrun) -> float:
        return ov.overrun_usd


@conditions.register("overrun_pct")
class OverrunPct(Condition):
    """``overrun_usd`` as a percentage of the cap (``25`` = a quarter over).

    ```yaml
    when: {overrun_pct: {gt: 10, lte: 50}}
    ```
    """

    schema = Number
    unit = "%"

    def value(self, ov: Overrun) -> float:
        return ov.overrun_pct


@conditions.register("forecast_usd")
class ForecastUsd(Condition):
    """Projected end-of-period spend in USD (statsmodels forecast or the burn-rate projection).

    ```yaml
    when: {forecast_usd: {gte: 5000}}
    ```
    """

    schema = Number
    unit = "USD"

    def value(self, ov: Overrun) -> float:
        return ov.forecast_usd


@conditions.register("spend_usd")
class SpendUsd(Condition):
    """Period-to-date spend in USD.

    ```yaml
    when: {spend_usd: {lt: 1000}}
    ```
    """

    schema = Number
    unit = "USD"

    def value(self, ov: Overrun) -> float:
        return ov.spend_usd


@conditions.register("spend_pct")
class SpendPct(Condition):
    """Period-to-date spend as a percentage of the cap (``100`` = the cap is spent).

    ```yaml
    when: {spend_pct: {gte: 100}}
    ```
    """

    schema = Number
    unit = "%"

    def value(self, ov: Overrun) -> float:
        return round(100.0 * ov.spend_usd / ov.cap_usd, 6) if ov.cap_usd else float("inf")


@conditions.register("cap_usd")
class CapUsd(Condition):
    """The budget's cap for the period in USD.

    ```yaml
    when: {cap_usd: {lte: 500}}
    ```
    """

    schema = Number
    unit = "USD"

    def value(self, ov: Overrun) -> float:
        return ov.cap_usd


@conditions.register("burn_rate")
class BurnRate(Condition):
    """Burn rate (1.0 lands exactly on the cap): the firing rule's long window, or the period-to-date rate.

    ```yaml
    when: {burn_rate: {gte: 14.4}}
    ```
    """

    schema = Number
    unit = "x"

    def value(self, ov: Overrun) -> float | None:
        return ov.burn_rate.long_rate if ov.burn_rate is not None else None


@conditions.register("anomaly_score")
class AnomalyScore(Condition):
    """Calibrated score in [0, 1] of the anomaly alert behind the overrun (missing for budget triggers).

    ```yaml
    when: {anomaly_score: {gte: 0.999}}
    ```
    """

    schema = Number

    def value(self, ov: Overrun) -> float | None:
        return ov.anomaly_score


@conditions.register("hours_to_exhaustion")
class HoursToExhaustion(Condition):
    """Hours from the overrun until the budget runs out at the forecast rate (0 when already spent;
    missing when it does not run out this period).

    ```yaml
    when: {hours_to_exhaustion: {lt: 6}}
    ```
    """

    schema = Number
    unit = "h"

    def value(self, ov: Overrun) -> float | None:
        if ov.exhausted_at is None:
            return None
        return round(max((ov.exhausted_at - ov.at).total_seconds(), 0.0) / 3600, 6)


@conditions.register("hour_utc")
class HourUtc(Condition):
    """Hour of the day (0-23, UTC) at which the overrun happened.

    ```yaml
    when: {hour_utc: {gte: 9, lt: 18}}
    ```
    """

    schema = Hour

    def value(self, ov: Overrun) -> int:
        return ov.at.hour


@conditions.register("weekday")
class WeekdayOf(Condition):
    """Day of the week (UTC) of the overrun: ``mon`` ... ``sun`` or 0 (Monday) ... 6.

    ```yaml
    when: {weekday: {in: [sat, sun]}}
    ```
    """

    schema = WeekdayCmp

    def value(self, ov: Overrun) -> int:
        return date.weekday(ov.at)

    def describe(self) -> str:
        parts = []
        for op, v in self.spec.ops():
            names = "[" + ", ".join(WEEKDAYS[x] for x in v) + "]" if isinstance(v, list) else WEEKDAYS[v]
            parts.append(f"{SYMBOLS[op]} {names}")
        return f"{self.name} " + " and ".join(parts)

    def show(self, actual: Any) -> str:
        return WEEKDAYS[actual]


@conditions.register("trigger")
class Trigger(Condition):
    """What raised the overrun: ``threshold`` (period-to-date crossed a fraction of the cap),
    ``burn_rate`` (a multi-window burn-rate rule fired) or ``anomaly``.

    ```yaml
    when: {trigger: {in: [threshold, burn_rate]}}
    ```
    """

    schema = TriggerName

    def value(self, ov: Overrun) -> str:
        return ov.trigger


@conditions.register("budget_rule")
class BudgetRule(Condition):
    """The budget rule that fired: ``threshold_80``, ``threshold_100``, ``fast``, ``slow`` ...

    ```yaml
    when: {budget_rule: threshold_100}
    ```
    """

    schema = Name

    def value(self, ov: Overrun) -> str:
        return ov.rule


