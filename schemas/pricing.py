"""The price catalog: $ per million tokens per model and $ per GPU-hour per SKU, by date.

A price applies from its ``effective_from`` date on: lookups take the event time, so a
price change never re-prices earlier usage. The shipped catalog is ``schemas/prices.yaml``;
``PriceCatalog.load(path)`` reads another one (the service passes
``BURNGUARD_PRICE_CATALOG``).

>>> from datetime import datetime, timezone
>>> cat = PriceCatalog.load()
>>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> round(cat.llm_cost("gpt-4o-2024-08-06", t, input_tokens=1_000_000, output_tokens=0), 4)
2.5
>>> cat.llm_cost("no-such-model", t, input_tokens=10) is None
True
>>> cat.gpu_sku("NVIDIA H100 80GB HBM3")
'H100-80GB'
"""

from __future__ import annotations

import bisect
import re
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from schemas.events import Money, as_utc
from schemas.yamlconf import ConfigError, load_yaml_file

__all__ = ["ConfigError", "GpuRate", "GpuSku", "ModelPrice", "ModelEntry", "PriceCatalog",
           "PricingModel", "PROVIDER_PREFIXES", "DEFAULT_CATALOG_PATH"]

DEFAULT_CATALOG_PATH = Path(__file__).with_name("prices.yaml")
PricingModel = Literal["on_demand", "spot", "reserved"]
PRICING_MODELS: tuple[str, ...] = ("on_demand", "spot", "reserved")
PER_MILLION = 1_000_000.0

#: Suffixes that name a snapshot of a catalog model rather than another model:
#: ``-20241022``, ``-2024-08-06``, ``-latest``, ``-v2:0``, ``-0613``, ``@20240620``.
_SNAPSHOT = re.compile(r"(?:[-@](?:\d{8}|\d{4}-\d{2}-\d{2}|latest|v\d+(?::\d+)?|\d{4}))$")
#: Vendor prefixes some gateways and clouds put before a model id (``us.anthropic.``).
_VENDOR = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|openai|meta|mistral|amazon|cohere|google)\.")


#: ``provider/`` path segments gateways put before a model id (LiteLLM's ``custom_llm_provider`` values).
PROVIDER_PREFIXES = frozenset({
    "openai", "azure", "azure_ai", "anthropic", "bedrock", "bedrock_converse", "vertex_ai", "vertex_ai_beta", "gemini",
    "mistral", "cohere", "groq", "together_ai", "fireworks_ai", "deepseek", "xai", "perplexity", "openrouter",
    "hosted_vllm", "vllm", "ollama", "ollama_chat", "huggingface", "sagemaker", "databricks", "watsonx", "cerebras",
    "text-completion-openai", "litellm_proxy",
})


def _utc_start(d: date | datetime) -> datetime:
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return datetime.combine(d, time(0), tzinfo=timezone.utc)


def _date_start(v: object) -> object:
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime.combine(v, time(0), tzinfo=timezone.utc)
    if isinstance(v, str) and len(v) == 10:  # "2026-03-01": a day starts at 00:00 UTC
        try:
            return datetime.combine(date.fromisoformat(v), time(0), tzinfo=timezone.utc)
        except ValueError:
            return v
    return v


#: A date (00:00 UTC) or a datetime (naive = UTC) from which a price applies.
EffectiveFrom = Annotated[datetime, BeforeValidator(_date_start), AfterValidator(as_utc)]


class ModelPrice(BaseModel):
    """Token prices in USD per million tokens, from ``effective_from`` (UTC midnight) on."""

    model_config = ConfigDict(extra="forbid")

    effective_from: EffectiveFrom
    input: Money
    output: Money = 0.0
    cache_read: Money | None = Field(None, description="defaults to the input price")
    cache_write: Money | None = Field(None, description="defaults to the input price")

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
             cache_write_tokens: int = 0) -> float:
        """USD for the given token counts (input here means uncached input)."""
        cr = self.input if self.cache_read is None else self.cache_read
        cw = self.input if self.cache_write is None else self.cache_write
        return (input_tokens * self.input + output_tokens * self.output
                + cache_read_tokens * cr + cache_write_tokens * cw) / PER_MILLION


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = "unknown"
    aliases: list[str] = Field(default_factory=list)
    prices: list[ModelPrice] = Field(min_length=1)

    @field_validator("prices")
    @classmethod
    def _sorted_unique(cls, prices: list[ModelPrice]) -> list[ModelPrice]:
        prices = sorted(prices, key=lambda p: _utc_start(p.effective_from))
        starts = [_utc_start(p.effective_from) for p in prices]
        if len(set(starts)) != len(starts):
            raise ValueError("two prices with the same effective_from")
        return prices


class GpuRate(BaseModel):
    """USD per GPU-hour by pricing model, from ``effective_from`` on."""

    model_config = ConfigDict(extra="forbid")

    effective_from: EffectiveFrom
    on_demand: Money
    spot: Money | None = None
    reserved: Money | None = None

    def hourly(self, pricing: str) -> float | None:
        return getattr(self, pricing, None) if pricing in PRICING_MODELS else None


class GpuSku(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: list[str] = Field(min_length=1, description="case-insensitive substrings of DCGM modelName")
    rates: list[GpuRate] = Field(min_length=1)

    @field_validator("rates")
    @classmethod
    def _sorted(cls, rates: list[GpuRate]) -> list[GpuRate]:
        return sorted(rates, key=lambda r: _utc_start(r.effective_from))


class GpuSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_pricing: PricingModel = "on_demand"
    skus: dict[str, GpuSku] = Field(default_factory=dict)


class PriceCatalog(BaseModel):
    """A versioned catalog. Build with :meth:`load`; lookups are cached per model string."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    currency: Literal["USD"] = "USD"
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    gpu: GpuSection = Field(default_factory=GpuSection)
    _names: dict[str, str] = PrivateAttr(default_factory=dict)
    _starts: dict[str, list[datetime]] = PrivateAttr(default_factory=dict)
    _gpu_starts: dict[str, list[datetime]] = PrivateAttr(default_factory=dict)
    _gpu_match: list[tuple[str, str]] = PrivateAttr(default_factory=list)
    _resolved: dict[str, str | None] = PrivateAttr(default_factory=dict)
    _sku_cache: dict[str, str | None] = PrivateAttr(default_factory=dict)
    _canonical: dict[tuple[str, str | None, str | None], str] = PrivateAttr(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float, date)) else v

    @model_validator(mode="after")
    def _index(self) -> "PriceCatalog":
        self._names = {}
        for name, entry in self.models.items():
            for alias in (name, *entry.aliases):
                self._names[alias.lower()] = name
        self._starts = {
            name: [_utc_start(p.effective_from) for p in e.prices] for name, e in self.models.items()
        }
        self._gpu_starts = {
            sku: [_utc_start(r.effective_from) for r in s.rates] for sku, s in self.gpu.skus.items()
        }
        # longest match string first, so "H100 NVL" wins over "H100"
        self._gpu_match = sorted(
            ((m.lower(), sku) for sku, s in self.gpu.skus.items() for m in s.match),
            key=lambda p: -len(p[0]))
        self._resolved = {}
        self._sku_cache = {}
        self._canonical = {}
        return self

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> "PriceCatalog":
        """Read a catalog file (default: the shipped ``prices.yaml``).

        Raises :class:`ConfigError` whose message is ``file:line: field: problem``.
        """
        return load_yaml_file(path or DEFAULT_CATALOG_PATH, cls)

    # -- LLM models ----------------------------------------------------------------------
    def resolve_model(self, model: str) -> str | None:
        """The catalog name for a model id as gateways spell it, or ``None``.

        Tries the exact id and aliases (case-insensitive), then without a ``provider/``
        path or a cloud vendor prefix, then without snapshot suffixes (dates, ``-latest``,
        ``-v2:0``). Another model's name is never reached by prefix (``o3-mini`` is not ``o3``).

        >>> cat = PriceCatalog.load()
        >>> cat.resolve_model("anthropic/claude-3-5-sonnet-20241022"), cat.resolve_model("o3-pro-x")
        ('claude-3-5-sonnet', None)
        """
        cached = self._resolved.get(model, "")
        if cached != "":
            return cached
        name = self._resolve(model)
        if len(self._resolved) > 50_000:
            self._resolved.clear()
        self._resolved[model] = name
        return name

    def _resolve(self, model: str) -> str | None:
        m = model.strip().lower()
        candidates = [m]
        if "/" in m:
            candidates.append(m.rsplit("/", 1)[1])
        base = _VENDOR.sub("", candidates[-1])
        if base != candidates[-1]:
            candidates.append(base)
        while True:
            stripped = _SNAPSHOT.sub("", candidates[-1])
            if stripped == candidates[-1] or not stripped:
                break
            candidates.append(stripped)
        for c in candidates:
            if c in self._names:
                return self._names[c]
        return None

    def canonical_model(self, model: str, provider: str | None = None, model_group: str | None = None) -> str:
        """The model name series and budgets are keyed by, so one model is one series however it is spelled.

        A leading ``provider/`` segment is dropped (``openai/gpt-4o`` is ``gpt-4o``) when it names a
        provider (:data:`PROVIDER_PREFIXES`, or the event's own provider); a deployment name the catalog
        does not know gives way to its gateway model group when the catalog knows that
        (``azure/prod-eastus-4o`` in group ``gpt-4o`` is ``gpt-4o``). Snapshot suffixes are kept.

        >>> cat = PriceCatalog.load()
        >>> cat.canonical_model("openai/gpt-4o"), cat.canonical_model("azure/prod-4o", "azure", "gpt-4o")
        ('gpt-4o', 'gpt-4o')
        >>> cat.canonical_model("meta-llama/Llama-3.1-8B"), cat.canonical_model("hosted_vllm/meta-llama/Llama-3.1-8B")
        ('meta-llama/Llama-3.1-8B', 'meta-llama/Llama-3.1-8B')
        """
        key = (model, provider, model_group)
        hit = self._canonical.get(key)
        if hit is not None:
            return hit
        name = model.strip()
        if "/" in name:
            first, rest = name.split("/", 1)
            low = first.lower()
            if rest and (low in PROVIDER_PREFIXES or (provider is not None and low == provider.lower())):
                name = rest
        group = model_group.strip() if isinstance(model_group, str) else ""
        if group and group != name and self.resolve_model(name) is None and self.resolve_model(group) is not None:
            name = group
        if len(self._canonical) > 50_000:
            self._canonical.clear()
        self._canonical[key] = name or model
        return name or model

    def model_price(self, model: str, ts: datetime) -> ModelPrice | None:
        """The price in effect at ``ts`` (UTC), or ``None`` (unknown model, or before its first price)."""
        name = self.resolve_model(model)
        if name is None:
            return None
        i = bisect.bisect_right(self._starts[name], ts) - 1
        return self.models[name].prices[i] if i >= 0 else None

    def provider_of(self, model: str) -> str | None:
        name = self.resolve_model(model)
        return self.models[name].provider if name is not None else None

    def llm_cost(self, model: str, ts: datetime, *, input_tokens: int = 0, output_tokens: int = 0,
                 cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> float | None:
        """USD for one call, or ``None`` if the model has no price at ``ts``."""
        price = self.model_price(model, ts)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)

    # -- GPUs ----------------------------------------------------------------------------
    def gpu_sku(self, model_name: str) -> str | None:
        """The SKU whose ``match`` substring occurs in a DCGM ``modelName`` (longest wins)."""
        cached = self._sku_cache.get(model_name, "")
        if cached != "":
            return cached
        low = model_name.lower()
        sku = next((s for m, s in self._gpu_match if m in low), None)
        if len(self._sku_cache) > 10_000:
            self._sku_cache.clear()
        self._sku_cache[model_name] = sku
        return sku

    def gpu_hourly(self, sku: str, pricing: str, ts: datetime) -> float | None:
        """USD per GPU-hour for ``sku`` under ``pricing`` at ``ts``, or ``None`` if not priced."""
        entry = self.gpu.skus.get(sku)
        if entry is None:
            return None
        i = bisect.bisect_right(self._gpu_starts[sku], ts) - 1
        return entry.rates[i].hourly(pricing) if i >= 0 else None
