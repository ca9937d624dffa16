"""The throughput benchmark's input: many allocation keys, two event shapes, envelopes or single messages.

Everything the final check compares against is computed here from what is published, never by the
code under test: each event's cost is a multiple of 2**-20 USD, so any sum of up to millions of them
is exact in a float whatever the order, and stored spend must *equal* published spend.

>>> w = Workload(shape="native", events=10, batch=4, keys=6, partitions=2, span_s=6.0, seed=1)
>>> msgs = w.messages()
>>> [len(m) for m in msgs], sum(w.events_per_offset[0]) + sum(w.events_per_offset[1]), w.requests
([2, 2], 10, 10)
>>> w.spend_usd == sum(e["cost_usd"] for p in msgs for m in p for e in orjson.loads(m))
True
>>> len(w.keys_used) <= 6
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

#: Unit of every published cost (exact binary fraction: sums are exact in any order).
COST_UNIT = 2.0 ** -20
#: Models events use (both in the shipped price catalog, though every event brings its own cost).
MODELS = (("gpt-4o-mini", "openai"), ("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic"))
LITELLM_FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/payloads/litellm_real/proxy_team_key.json"
#: Fields of a real payload dropped for the ~1 KB shape (LiteLLM's model map copy, the prompt and the
#: response, the empty error block: what `turn_off_message_logging` and a lean logger leave out).
LITELLM_DROPPED = ("model_map_information", "messages", "response", "error_information", "cost_breakdown",
                   "standard_built_in_tools_params", "status_fields")


def key_dims(k: int) -> tuple[str, str, str, str, str]:
    """(team, feature, customer, model, provider) of key number ``k``: distinct for k < 150,000, within the
    shipped cardinality limits (200 teams, 10 features and 25 customers per team)."""
    model, provider = MODELS[(k // 50_000) % len(MODELS)]
    return f"t{k % 200:03d}", f"f{(k // 200) % 10}", f"c{(k // 2000) % 25:02d}", model, provider


def allocation_key(k: int) -> str:
    team, feature, customer, model, _ = key_dims(k)
    return f"team={team}|feature={feature}|customer={customer}|model={model}|environment=production"


def litellm_template() -> dict[str, Any]:
    """A real LiteLLM proxy StandardLoggingPayload (tests/fixtures), trimmed to about 1 KB."""
    doc = orjson.loads(LITELLM_FIXTURE.read_bytes())
    for name in LITELLM_DROPPED:
        doc.pop(name, None)
    doc["metadata"] = {k: v for k, v in doc["metadata"].items() if v not in (None, {}, [])}
    doc["hidden_params"] = {k: v for k, v in doc["hidden_params"].items() if v not in (None, {}, [])}
    return {k: v for k, v in doc.items() if v is not None}


@dataclass
class Workload:
    """``events`` events of one ``shape`` ("native" or "litellm") over ``keys`` allocation keys, in messages of
    ``batch`` events (1: one event per message), spread round-robin over ``partitions`` producers (one per
    partition, each in event-time order) and over ``span_s`` seconds of event time ending at ``end``."""

    shape: str
    events: int
    batch: int
    keys: int
    partitions: int
    span_s: float
    seed: int = 7
    end: float | None = None  # epoch seconds; default: now
    spend_usd: float = 0.0
    requests: int = 0
    keys_used: set[int] = field(default_factory=set)
    events_per_offset: list[list[int]] = field(default_factory=list)
    payload_bytes: int = 0

    def messages(self) -> list[list[bytes]]:
        """Per partition, the message values in order (also fills the published totals)."""
        if self.shape not in ("native", "litellm"):
            raise ValueError(f"unknown shape {self.shape!r}")
        rng = random.Random(self.seed)
        end = self.end if self.end is not None else datetime.now(timezone.utc).timestamp()
        start = end - self.span_s
        template = litellm_template() if self.shape == "litellm" else {}
        make = self._litellm if self.shape == "litellm" else self._native
        pending: list[list[bytes]] = [[] for _ in range(self.partitions)]
        out: list[list[bytes]] = [[] for _ in range(self.partitions)]
        self.events_per_offset = [[] for _ in range(self.partitions)]
        spend_units = 0
        for i in range(self.events):
            k = rng.randrange(self.keys)
            units = rng.randint(1, 10_000)
            spend_units += units
            self.keys_used.add(k)
            p = i % self.partitions
            ts = start + self.span_s * i / max(self.events, 1)
            event = orjson.dumps(make(i, k, ts, units * COST_UNIT, rng, template))
            self.payload_bytes += len(event)
            pending[p].append(event)
            if len(pending[p]) >= self.batch:
                self._flush(out, pending, p)
        for p in range(self.partitions):
            self._flush(out, pending, p)
        self.spend_usd = spend_units * COST_UNIT
        self.requests = self.events
        return out

    def _flush(self, out: list[list[bytes]], pending: list[list[bytes]], p: int) -> None:
        if not pending[p]:
            return
        body = pending[p][0] if self.batch == 1 else b"[" + b",".join(pending[p]) + b"]"
        out[p].append(body)
        self.events_per_offset[p].append(len(pending[p]))
        pending[p] = []

    @staticmethod
    def _native(i: int, k: int, ts: float, cost: float, rng: random.Random, _: dict[str, Any]) -> dict[str, Any]:
        team, feature, customer, model, provider = key_dims(k)
        return {"timestamp": datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
                "model": model, "provider": provider, "input_tokens": rng.randint(50, 4000),
                "output_tokens": rng.randint(10, 800), "cost_usd": cost, "latency_ms": rng.randint(80, 9000),
                "request_id": f"req-{i:09d}", "tags": {"team": team, "feature": feature, "customer": customer}}

    @staticmethod
    def _litellm(i: int, k: int, ts: float, cost: float, rng: random.Random, tpl: dict[str, Any]) -> dict[str, Any]:
        team, feature, customer, model, provider = key_dims(k)
        prompt, completion = rng.randint(50, 4000), rng.randint(10, 800)
        latency = rng.randint(80, 9000) / 1000
        doc = dict(tpl)
        meta = dict(tpl["metadata"])
        meta.update(user_api_key_team_alias=team, user_api_key_team_id=f"team-{team}",
                    user_api_key_alias=f"svc-{team}-prod", user_api_key_user_id=f"u-{k % 997}",
                    usage_object={"completion_tokens": completion, "prompt_tokens": prompt,
                                  "total_tokens": prompt + completion})
        hidden = dict(tpl["hidden_params"], litellm_model_name=f"{provider}/{model}", response_cost=cost)
        doc.update(id=f"chatcmpl-{i:012d}", litellm_call_id=f"call-{i:012d}", trace_id=f"trace-{i:012d}",
                   startTime=ts, endTime=ts + latency, completionStartTime=ts + latency / 2, response_time=latency,
                   model=model, model_group=model, custom_llm_provider=provider, prompt_tokens=prompt,
                   completion_tokens=completion, total_tokens=prompt + completion, response_cost=cost,
                   end_user=customer, request_tags=[f"feature:{feature}"], metadata=meta, hidden_params=hidden)
        return doc
