"""Billing rows in the FinOps FOCUS format (JSON objects, or rows of a FOCUS CSV file).

Cost is ``EffectiveCost``: the amortised cost of the usage after negotiated discounts and
with commitment purchases spread over the usage they cover. ``BilledCost`` would show a
reserved-instance or savings-plan purchase as one spike on the invoice day and its usage
as free, and ``ListCost`` ignores discounts; neither is what a team's usage really costs.
If ``EffectiveCost`` is empty, ``BilledCost`` is used. The record time is
``ChargePeriodStart`` (``ChargePeriodEnd`` is kept as ``period_end``). Costs must be in USD.

Credits and refunds (negative costs, ``ChargeCategory`` ``Credit`` or ``Adjustment``) are
legitimate rows: they are accepted and netted into spend and budgets, as on the invoice. A credit
lowers a minute's spend; it is never scored as a spike (detection looks for rises). Only billing
rows may be negative: an LLM call or GPU sample with a negative cost is still rejected.

Allocation tags: ``Tags`` (a JSON object, or a JSON string of one as in CSV exports), every
``x_`` custom column, and ``service``/``resource_id``/``sub_account``/``region`` from the row.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> row = FocusRow.model_validate({"BilledCost": "0", "EffectiveCost": "12.5", "ListCost": "20",
...     "ChargePeriodStart": "2026-01-05T00:00:00Z", "ChargePeriodEnd": "2026-01-05T01:00:00Z",
...     "ServiceProviderName": "AWS", "ServiceName": "Amazon Bedrock", "Tags": '{"team": "search"}',
...     "x_CostCenter": "cc-42"})
>>> r = to_cost_record(row, PriceCatalog.load(), AllocationRules.load())
>>> r.cost_usd, r.team, r.provider, r.service, r.period_end.hour
(12.5, 'search', 'AWS', 'Amazon Bedrock', 1)
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import UNKNOWN, SignedMoney
from schemas.pricing import PriceCatalog
from schemas.sources._common import EventTime, fast_record

FORMAT = "focus"


class FocusRow(BaseModel):
    """The FOCUS columns burnguard reads; ``x_`` custom columns are kept as extras."""

    model_config = ConfigDict(extra="allow")

    format: Literal["focus"] | None = None
    BilledCost: SignedMoney | None = None
    EffectiveCost: SignedMoney | None = None
    ListCost: SignedMoney | None = None
    ContractedCost: SignedMoney | None = None
    BillingCurrency: str | None = None
    ChargePeriodStart: EventTime
    ChargePeriodEnd: EventTime | None = None
    ChargeCategory: str | None = None
    ProviderName: str | None = Field(None, description="deprecated in FOCUS 1.3 for ServiceProviderName")
    ServiceProviderName: str | None = None
    ServiceName: str | None = None
    ServiceCategory: str | None = None
    ResourceId: str | None = None
    ResourceName: str | None = None
    SkuId: str | None = None
    SubAccountId: str | None = None
    SubAccountName: str | None = None
    RegionId: str | None = None
    ConsumedQuantity: float | None = Field(None, allow_inf_nan=False)
    ConsumedUnit: str | None = None
    Tags: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
        return data

    @field_validator("Tags", mode="before")
    @classmethod
    def _tags_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError:
                raise ValueError("Tags must be a JSON object (or a JSON string of one)") from None
        return v

    @model_validator(mode="after")
    def _usable(self) -> "FocusRow":
        if self.EffectiveCost is None and self.BilledCost is None:
            raise ValueError("EffectiveCost: required (or BilledCost)")
        if self.BillingCurrency is not None and self.BillingCurrency.upper() != "USD":
            raise ValueError(f"BillingCurrency {self.BillingCurrency!r} is not supported; costs must be USD")
        return self

    @property
    def custom_columns(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k.startswith("x_")}


def to_cost_record(row: FocusRow, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    cost = row.EffectiveCost if row.EffectiveCost is not None else row.BilledCost
    tags = {"service": row.ServiceName, "resource_id": row.ResourceId, "sub_account": row.SubAccountName,
            "region": row.RegionId, **row.custom_columns, **(row.Tags or {})}
    a = rules.allocate(tags)
    provider = row.ServiceProviderName or row.ProviderName or UNKNOWN
    return fast_record(
        ts=row.ChargePeriodStart, source="billing", team=a.team, feature=a.feature, customer=a.customer,
        model=a.model, environment=a.environment, tier=a.tier, provider=provider[:64], cost_usd=cost,
        priced=True, period_end=row.ChargePeriodEnd, service=row.ServiceName, resource_id=row.ResourceId,
        format=FORMAT)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(FocusRow.model_validate(item), catalog, rules)


def iter_focus_csv(path: str | Path) -> Iterator[dict[str, str]]:
    """Rows of a FOCUS CSV file (header row = column names) as dicts, streamed."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            yield {k: v for k, v in row.items() if k is not None}  # None: cells beyond the header


def read_focus_csv(path: str | Path) -> list[dict[str, str]]:
    """All rows of a FOCUS CSV file as dicts; feed them to ``Normalizer.parse_items("billing", rows)``."""
    return list(iter_focus_csv(path))
