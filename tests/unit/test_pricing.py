"""Price catalog: effective dates, model name resolution, GPU rates, and load errors."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from schemas.ingest import Normalizer
from schemas.pricing import ConfigError, PriceCatalog

UTC = timezone.utc

CATALOG = """\
version: "test-1"
models:
  acme-chat:
    provider: acme
    aliases: [acme/chat-v1]
    prices:
      - {effective_from: 2026-01-01, input: 1.00, output: 2.00}
      - {effective_from: 2026-03-01, input: 0.50, output: 1.00, cache_read: 0.05, cache_write: 0.60}
gpu:
  default_pricing: reserved
  skus:
    X1:
      match: ["Acme X1"]
      rates:
        - {effective_from: 2026-01-01, on_demand: 4.00, spot: 1.00, reserved: 2.00}
        - {effective_from: 2026-06-01, on_demand: 3.60}
"""


def write(tmp_path: Path, text: str, name: str = "prices.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture()
def catalog(tmp_path: Path) -> PriceCatalog:
    return PriceCatalog.load(write(tmp_path, CATALOG))


def test_shipped_catalog_loads_and_is_versioned() -> None:
    cat = PriceCatalog.load()
    assert cat.version and cat.currency == "USD"
    assert {"gpt-4o", "claude-sonnet-4", "o3"} <= set(cat.models)
    assert cat.gpu.skus["H100-80GB"].rates[0].on_demand > 0


def test_price_change_applies_from_its_date_only(catalog: PriceCatalog) -> None:
    before = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    at = datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC)
    tokens = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert catalog.llm_cost("acme-chat", before, **tokens) == pytest.approx(3.00)
    assert catalog.llm_cost("acme-chat", at, **tokens) == pytest.approx(1.50)
    # before the first price there is no price: the event stays unpriced rather than guessed
    assert catalog.llm_cost("acme-chat", datetime(2025, 12, 31, tzinfo=UTC), **tokens) is None


def test_price_change_through_the_normalizer(catalog: PriceCatalog) -> None:
    n = Normalizer(catalog=catalog)
    events = [{"timestamp": ts, "model": "acme-chat", "input_tokens": 1_000_000}
              for ts in ("2026-02-28T23:59:00Z", "2026-03-01T00:01:00Z")]
    records, rejects = n.parse("llm", orjson.dumps(events))
    assert rejects == [] and [r.cost_usd for r in records] == pytest.approx([1.00, 0.50])


def test_cache_prices_default_to_input(catalog: PriceCatalog) -> None:
    feb, apr = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    assert catalog.llm_cost("acme-chat", feb, cache_read_tokens=10**6, cache_write_tokens=10**6) == 2.0
    assert catalog.llm_cost("acme-chat", apr, cache_read_tokens=10**6, cache_write_tokens=10**6) == \
        pytest.approx(0.65)


@pytest.mark.parametrize("name, expected", [
    ("acme-chat", "acme-chat"), ("ACME-CHAT", "acme-chat"), ("acme/chat-v1", "acme-chat"),
    ("acme-chat-20260115", "acme-chat"), ("acme-chat-2026-01-15", "acme-chat"), ("acme-chat-latest", "acme-chat"),
    ("openrouter/acme-chat", "acme-chat"), ("acme-chat-mini", None), ("acme", None), ("", None),
])
def test_model_name_resolution(catalog: PriceCatalog, name: str, expected: str | None) -> None:
    assert catalog.resolve_model(name) == expected


def test_shipped_catalog_resolves_provider_spellings() -> None:
    cat = PriceCatalog.load()
    assert cat.resolve_model("us.anthropic.claude-3-5-sonnet-20241022-v2:0") == "claude-3-5-sonnet"
    assert cat.resolve_model("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert cat.resolve_model("o3-mini") is None  # never priced as another model


def test_gpu_rates_by_pricing_model_and_date(catalog: PriceCatalog) -> None:
    jan, jul = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    assert catalog.gpu_sku("Acme X1 96GB") == "X1" and catalog.gpu_sku("Acme X2") is None
    assert [catalog.gpu_hourly("X1", p, jan) for p in ("on_demand", "spot", "reserved")] == [4.0, 1.0, 2.0]
    assert catalog.gpu_hourly("X1", "on_demand", jul) == 3.6
    assert catalog.gpu_hourly("X1", "spot", jul) is None  # the new rate row has no spot price


def test_gpu_default_pricing_from_catalog(catalog: PriceCatalog) -> None:
    sample = {"timestamp": "2026-01-05T00:00:00Z", "interval_s": 3600, "labels": {"modelName": "Acme X1"},
              "metrics": {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.5}}
    records, _ = Normalizer(catalog=catalog).parse("gpu", orjson.dumps(sample))
    assert (records[0].pricing_model, records[0].cost_usd) == ("reserved", 2.0)


def test_gpu_sku_longest_match_wins() -> None:
    cat = PriceCatalog.load()
    assert cat.gpu_sku("NVIDIA L40S") == "L40S" and cat.gpu_sku("NVIDIA L4") == "L4"
    assert cat.gpu_sku("NVIDIA A100-SXM4-80GB") == "A100-80GB" and cat.gpu_sku("NVIDIA A100-SXM4-40GB") == "A100-40GB"


@pytest.mark.parametrize("text, line, field", [
    # a negative price on line 6
    ("""\
     version: "1"
     models:
       m:
         prices:
           - effective_from: 2026-01-01
             input: -1
     """, 6, "models.m.prices.0.input"),
    # a typo'd key on line 5 (extra fields are forbidden so typos cannot pass silently)
    ("""\
     version: "1"
     models:
       m:
         prices:
           - {effective_from: 2026-01-01, input: 1, ouput: 2}
     """, 5, "models.m.prices.0.ouput"),
    # an unknown pricing model on line 3
    ("""\
     version: "1"
     gpu:
       default_pricing: cheap
     """, 3, "gpu.default_pricing"),
    # a missing version: reported at the top
    ("""\
     models: {}
     """, 1, "version"),
    # a bad date on line 9
    ("""\
     version: "1"
     gpu:
       skus:
         X:
           match: [X]
           rates:
             - effective_from: 2026-01-01
               on_demand: 1
             - effective_from: someday
               on_demand: 2
     """, 9, "gpu.skus.X.rates.1.effective_from"),
])
def test_bad_catalog_names_file_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        PriceCatalog.load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: {field}:"), msg


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'version: "1"\nmodels:\n  m: [unclosed\n')
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: invalid YAML"):
        PriceCatalog.load(path)


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        PriceCatalog.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty"):
        PriceCatalog.load(write(tmp_path, ""))


def test_duplicate_effective_dates_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        version: "1"
        models:
          m:
            prices:
              - {effective_from: 2026-01-01, input: 1}
              - {effective_from: 2026-01-01, input: 2}
        """)
    with pytest.raises(ConfigError, match=r":4: models.m.prices: Value error, two prices with the same"):
        PriceCatalog.load(path)
