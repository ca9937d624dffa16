"""Payloads built by the real LiteLLM 1.110.2 (SDK, Router, proxy key metadata) are counted as LiteLLM meant.

The fixtures in tests/fixtures/payloads/litellm_real/ were written by its generate.py; the last test
builds them again live when litellm is importable. Expected values are worked out here from
LiteLLM's own fields (status, cache_hit, response_cost, tokens, the key's team) and the price of
claude-3-5-haiku written out by hand ($0.80 / $4.00 per million input / output tokens): LiteLLM
1.110.2 cannot price ``claude-3-5-haiku`` and logs 0.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.ingest import Normalizer

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "litellm_real"
NAMES = sorted(p.stem for p in HERE.glob("*.json"))
HAIKU_IN, HAIKU_OUT = 0.80, 4.00  # $/M tokens, prices.yaml claude-3-5-haiku (2024-11-04)


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def _kv(tags: list[Any], key: str) -> str | None:
    return next((t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith(key + ":")), None)


def expected(p: dict[str, Any]) -> dict[str, Any]:
    """What the record must say, from LiteLLM's own fields."""
    meta = p.get("metadata") or {}
    slm = meta.get("spend_logs_metadata")
    slm = json.loads(slm) if isinstance(slm, str) else (slm or {})
    failed = p["status"] == "failure"
    hit = bool(p.get("cache_hit"))
    model = p["model"].split("/", 1)[1] if p["model"].startswith(("openai/", "anthropic/")) else p["model"]
    if failed or hit or p["response_cost"] > 0:
        cost = p["response_cost"]
    else:
        assert model == "claude-3-5-haiku", model  # the one model LiteLLM could not price here
        cost = (p["prompt_tokens"] * HAIKU_IN + p["completion_tokens"] * HAIKU_OUT) / 1e6
    tags = p.get("request_tags") or []
    return {
        "team": meta.get("user_api_key_team_alias") or "unallocated",  # the key's team, never a request tag
        "feature": _kv(tags, "feature") or slm.get("feature") or "unknown",  # never guessed from the key alias
        "customer": slm.get("customer") or (str(p["end_user"]) if p.get("end_user") not in (None, "") else "unknown"),
        "model": model, "cost_usd": pytest.approx(cost, rel=1e-9, abs=1e-15), "priced": True,
        "requests": 1, "failed_requests": int(failed), "cache_hit_requests": int(hit),
        "output_tokens": 0 if hit else p["completion_tokens"],  # a cache hit used no provider tokens
    }


def observed(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("team", "feature", "customer", "model", "cost_usd", "priced", "requests",
                                        "failed_requests", "cache_hit_requests", "output_tokens")}


def check(name: str, payload: dict[str, Any]) -> None:
    records, rejects = Normalizer().parse("llm", orjson.dumps(payload))
    assert rejects == [], f"{name}: {rejects[0].reason}"
    assert len(records) == 1
    assert observed(records[0]) == expected(payload), name


def test_fixtures_cover_every_path() -> None:
    assert {"sdk_priced", "sdk_unpriced", "sdk_failed", "sdk_cache_hit", "sdk_bad_optional_types", "router_priced",
            "proxy_team_key", "proxy_tag_contradicts_key_team", "proxy_unpriced", "proxy_bad_optional_types",
            "proxy_failed"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_real_payload_is_counted_as_litellm_meant(name: str) -> None:
    check(name, load(name))


def test_unpriced_by_litellm_is_priced_from_the_catalog_not_booked_at_zero() -> None:
    for name in ("sdk_unpriced", "proxy_unpriced"):
        records, _ = Normalizer().parse("llm", orjson.dumps(load(name)))
        assert records[0].cost_usd == pytest.approx((10 * HAIKU_IN + 20 * HAIKU_OUT) / 1e6) and records[0].priced


def test_unpriced_by_litellm_and_the_catalog_is_counted_unpriced() -> None:
    p = load("sdk_unpriced")
    p["model"] = "acme-private-llm"
    n = Normalizer()
    records, rejects = n.parse("llm", orjson.dumps(p))
    assert rejects == [] and (records[0].priced, records[0].cost_usd) == (False, 0.0)
    assert n.stats["unpriced"] == 1


def test_a_request_tag_cannot_move_spend_off_the_keys_team() -> None:
    p = load("proxy_tag_contradicts_key_team")
    assert "team:ads" in p["request_tags"] and p["metadata"]["user_api_key_team_alias"] == "search"
    (r,), _ = Normalizer().parse("llm", orjson.dumps(p))
    assert (r.team, r.feature) == ("search", "chat")
    spoof = dict(p, request_tags=["key.team_alias:ads", "team_alias:ads", "user_api_key_team_alias:ads"])
    spoof["metadata"] = dict(p["metadata"], spend_logs_metadata={"team": "ads", "key.team_alias": "ads"})
    (r,), _ = Normalizer().parse("llm", orjson.dumps(spoof))
    assert r.team == "search"


def test_client_team_tag_still_allocates_when_no_key_team() -> None:
    p = load("sdk_priced")
    p["request_tags"] = ["team:ads"]
    (r,), _ = Normalizer().parse("llm", orjson.dumps(p))
    assert r.team == "ads"


def test_sdk_and_proxy_spellings_of_one_model_are_one_series() -> None:
    keys = {Normalizer().parse("llm", orjson.dumps(dict(load(n), metadata={}, request_tags=[])))[0][0].allocation_key
            for n in ("sdk_priced", "router_priced", "proxy_team_key")}
    assert keys == {"team=unallocated|feature=unknown|customer=unknown|model=gpt-4o|environment=production"}


def test_model_group_names_a_deployment_the_catalog_does_not_know() -> None:
    p = dict(load("router_priced"), model="azure/prod-eastus-4o", custom_llm_provider="azure", response_cost=0.0)
    (r,), _ = Normalizer().parse("llm", orjson.dumps(p))
    assert r.model == "gpt-4o" and r.cost_usd == pytest.approx((10 * 2.50 + 20 * 10.00) / 1e6)


@pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm (test extra) not installed")
def test_payloads_generated_live_by_litellm() -> None:
    spec = importlib.util.spec_from_file_location("litellm_generate", HERE / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(gen)
    live = gen.generate()
    assert set(live) == set(NAMES)
    for name, payload in live.items():
        check(name, payload)


def test_openai_request_metadata_cannot_claim_a_key_team() -> None:
    event = {"model": "gpt-4o", "created": 1767607200, "usage": {"prompt_tokens": 10, "completion_tokens": 2},
             "metadata": {"key.team_alias": "ads"}, "tags": {"team": "search"}}
    (r,), _ = Normalizer().parse("llm", orjson.dumps(event))
    assert r.team == "search"
