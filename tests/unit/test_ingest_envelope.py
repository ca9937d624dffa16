"""Envelopes, rejections and their reasons, counters, and the old ``parse_message`` API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.cost import CostRecord
from schemas.deadletter import Rejection
from schemas.ingest import Normalizer, parse_event, parse_message

T = "2026-01-05T10:00:00Z"


def native(**kw: object) -> dict[str, object]:
    return {"timestamp": T, "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5, **kw}


@pytest.fixture()
def n() -> Normalizer:
    return Normalizer()


def reasons(rejects: list[Rejection]) -> list[str]:
    return [j.reason for j in rejects]


def test_parse_message_keeps_its_signature_and_types() -> None:
    records, rejects = parse_message("llm", orjson.dumps([native(cost_usd=0.25), {"model": 3}]))
    assert all(isinstance(r, CostRecord) for r in records) and all(isinstance(j, Rejection) for j in rejects)
    assert [r.cost_usd for r in records] == [0.25]
    assert [j.index for j in rejects] == [1]
    assert parse_event("llm", native()).model == "gpt-4o"
    with pytest.raises(ValueError, match="unknown source"):
        parse_event("nope", native())  # type: ignore[arg-type]


def test_one_bad_event_rejects_only_itself(n: Normalizer) -> None:
    events = [native(), native(input_tokens=-1), "text", native(cost_usd=0.1), native(model="")]
    records, rejects = n.parse("llm", orjson.dumps({"events": events}))
    assert len(records) == 2 and [r.cost_usd for r in records][1] == 0.1
    assert [j.index for j in rejects] == [1, 2, 4]
    assert "input_tokens" in rejects[0].reason and "greater than or equal to 0" in rejects[0].reason
    assert rejects[1].reason == "event must be a JSON object, got str"
    assert orjson.loads(rejects[0].raw) == events[1]  # the event itself, not the whole envelope


def test_single_event_rejection_has_no_index_and_keeps_original_bytes(n: Normalizer) -> None:
    raw = orjson.dumps(native(output_tokens="many"))
    records, rejects = n.parse("llm", raw)
    assert records == [] and rejects[0].index is None and rejects[0].raw == raw
    assert rejects[0].reason.startswith("native: output_tokens:")


@pytest.mark.parametrize("value, expected", [
    (b"{not json", "invalid JSON"),
    (b"", "invalid JSON"),
    (None, "invalid JSON"),
    (b"42", "expected a JSON object, an array"),
    (b'"x"', "expected a JSON object, an array"),
])
def test_whole_message_rejections(n: Normalizer, value: bytes | None, expected: str) -> None:
    records, rejects = n.parse("llm", value)
    assert records == [] and len(rejects) == 1 and expected in rejects[0].reason
    assert rejects[0].raw == (value or b"")


def test_oversized_message(n: Normalizer) -> None:
    small = Normalizer(n.catalog, n.rules, max_message_bytes=100)
    raw = orjson.dumps([native()] * 5)
    records, rejects = small.parse("llm", raw)
    assert records == [] and f"message of {len(raw)} bytes exceeds 100" == rejects[0].reason


def test_unknown_source_and_format(n: Normalizer) -> None:
    _, rejects = n.parse("logs", orjson.dumps(native()))
    assert rejects[0].reason == "unknown source 'logs'; expected one of llm, gpu, billing"
    _, rejects = n.parse("llm", orjson.dumps(native(format="bedrock")))
    assert rejects[0].reason.startswith("unknown format 'bedrock'; expected one of native, openai, anthropic")
    _, rejects = n.parse("llm", orjson.dumps(native(format="dcgm")))
    assert rejects[0].reason.startswith("format not accepted on usage.llm: 'dcgm'")


@pytest.mark.parametrize("cost", ["NaN", "Infinity", -0.01, "-1e9"])
def test_bad_costs_are_rejected(n: Normalizer, cost: object) -> None:
    # orjson refuses NaN/Infinity literals, so they arrive as strings producers serialise them as
    raw = orjson.dumps(native(cost_usd=cost))
    records, rejects = n.parse("llm", raw)
    assert records == [] and "cost_usd" in rejects[0].reason


def test_bad_costs_in_other_formats(n: Normalizer) -> None:
    litellm = {"model": "gpt-4o", "startTime": 1767607200, "response_cost": -1}
    _, rejects = n.parse("llm", orjson.dumps(litellm))
    assert rejects[0].reason.startswith("litellm: response_cost:")
    row = {"ChargePeriodStart": T, "EffectiveCost": "nan"}
    _, rejects = n.parse("billing", orjson.dumps(row))
    assert rejects[0].reason.startswith("focus: EffectiveCost:")
    _, rejects = n.parse("billing", orjson.dumps({"ChargePeriodStart": T, "BilledCost": 1, "BillingCurrency": "EUR"}))
    assert "BillingCurrency 'EUR' is not supported" in rejects[0].reason


def test_future_timestamps(n: Normalizer) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(minutes=20)).isoformat()
    later_epoch = (datetime.now(timezone.utc) + timedelta(minutes=20)).timestamp()
    ok, _ = n.parse("llm", orjson.dumps(native(timestamp=soon)))
    assert len(ok) == 1
    for fmt, event in [
        ("native", native(timestamp=later)),
        ("openai", {"model": "gpt-4o", "created": int(later_epoch), "usage": {"prompt_tokens": 1}}),
        ("litellm", {"model": "gpt-4o", "startTime": later_epoch}),
        ("dcgm", {"timestamp": later, "metrics": {}}),
    ]:
        source = "gpu" if fmt == "dcgm" else "llm"
        records, rejects = n.parse(source, orjson.dumps(event))
        assert records == [], fmt
        assert "in the future" in rejects[0].reason and rejects[0].reason.startswith(fmt), rejects[0].reason


def test_unknown_model_is_kept_unpriced_and_counted(n: Normalizer) -> None:
    records, rejects = n.parse("llm", orjson.dumps([native(model="acme-llm-9000"), native()]))
    assert rejects == []
    assert [(r.priced, r.cost_usd) for r in records][0] == (False, 0.0)
    assert records[1].priced and records[1].cost_usd > 0
    assert n.stats["unpriced"] == 1 and n.stats["records"] == 2 and n.stats["format.native"] == 2


def test_unknown_gpu_sku_is_kept_unpriced(n: Normalizer) -> None:
    sample = {"timestamp": T, "labels": {"modelName": "Quantum Accelerator Q1"},
              "metrics": {"DCGM_FI_DEV_GPU_UTIL": 50}}
    records, _ = n.parse("gpu", orjson.dumps(sample))
    assert records[0].priced is False and records[0].cost_usd == 0 and records[0].gpu_seconds == 30
    assert n.stats["unpriced"] == 1


def test_gpu_sample_with_unknown_pricing_label_is_rejected(n: Normalizer) -> None:
    sample = {"timestamp": T, "labels": {"modelName": "NVIDIA L4", "pricing": "free"}, "metrics": {}}
    _, rejects = n.parse("gpu", orjson.dumps(sample))
    assert "pricing 'free' is not one of on_demand, spot, reserved" in rejects[0].reason


def test_envelope_format_applies_to_its_events(n: Normalizer) -> None:
    usage = {"input_tokens": 100, "output_tokens": 10}
    env = {"format": "openai", "events": [{"model": "gpt-4o", "created": 1767607200, "usage": usage},
                                          {"model": "gpt-4o", "timestamp": T, "usage": usage,
                                           "format": "anthropic"}]}
    records, rejects = n.parse("llm", orjson.dumps(env))
    assert rejects == [] and [r.format for r in records] == ["openai", "anthropic"]


def test_openai_cached_more_than_prompt_is_rejected_with_explanation(n: Normalizer) -> None:
    ev = {"model": "gpt-4o", "created": 1767607200,
          "usage": {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 20}}}
    _, rejects = n.parse("llm", orjson.dumps(ev))
    assert "cached_tokens (20) exceeds prompt_tokens (10)" in rejects[0].reason


def test_missing_time_is_explained(n: Normalizer) -> None:
    _, rejects = n.parse("llm", orjson.dumps({"model": "m", "usage": {"prompt_tokens": 1}}))
    assert "give `timestamp`, `created` or `created_at`" in rejects[0].reason
    _, rejects = n.parse("llm", orjson.dumps({"gen_ai.request.model": "m"}))
    assert "startTimeUnixNano" in rejects[0].reason
    _, rejects = n.parse("llm", orjson.dumps({"timestamp": T, "gen_ai.usage.input_tokens": 5}))
    assert "gen_ai.request.model or gen_ai.response.model is required" in rejects[0].reason


def test_event_cost_beats_catalog(n: Normalizer) -> None:
    records, _ = n.parse("llm", orjson.dumps(native(cost_usd=1.5, input_tokens=10**6)))
    assert records[0].cost_usd == 1.5


def test_empty_envelope(n: Normalizer) -> None:
    assert n.parse("llm", b"[]") == ([], [])
    assert n.parse("llm", b'{"events": []}') == ([], [])


def test_str_value_is_accepted(n: Normalizer) -> None:
    records, _ = n.parse("llm", orjson.dumps(native()).decode())  # type: ignore[arg-type]
    assert len(records) == 1


def test_allocation_key_matches_the_key_model(n: Normalizer) -> None:
    tags = {"team": "a|b", "feature": "x=y", "customer": "100%", "environment": "dev"}
    records, _ = n.parse("llm", orjson.dumps(native(tags=tags)))
    r = records[0]
    assert r.allocation_key == str(r.key)
    assert r.allocation_key == "team=a%7Cb|feature=x%3Dy|customer=100%25|model=gpt-4o|environment=dev"


def test_litellm_spend_logs_row(n: Normalizer) -> None:
    row = {"request_id": "r1", "model": "gpt-4o", "spend": 0.25, "startTime": "2026-01-05T10:00:00Z",
           "endTime": "2026-01-05T10:00:02Z", "prompt_tokens": 10, "completion_tokens": 2,
           "team_id": "team-ml", "request_tags": ["feature=batch"], "metadata": {}}
    records, rejects = n.parse("llm", orjson.dumps(row))
    assert rejects == []
    r = records[0]
    assert (r.format, r.cost_usd, r.team, r.feature, r.latency_ms) == ("litellm", 0.25, "team-ml", "batch", 2000.0)
    assert r.request_id == "r1"


def test_non_bytes_values(n: Normalizer) -> None:
    records, _ = n.parse("llm", bytearray(orjson.dumps(native())))  # type: ignore[arg-type]
    assert len(records) == 1
    records, _ = n.parse("llm", memoryview(orjson.dumps(native())))  # type: ignore[arg-type]
    assert len(records) == 1
    records, rejects = n.parse("llm", 42)  # type: ignore[arg-type]
    assert records == [] and rejects[0].reason == "message value must be bytes, got int"
