"""The fault tests' own traffic (tests/e2e/test_faults.py): three producers, one an hour behind, publishing
native LLM events generated here (seeded), the budgets they spend from, and the sums of what was published,
computed here without the code under test."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from kafka.partitioner.default import murmur2

from sinks.kafka_producer import UsageProducer

PARTITIONS = 4
START = datetime.combine(date.today() - timedelta(days=2), datetime.min.time(), tzinfo=timezone.utc) \
    + timedelta(hours=8)
ROUNDS_PER_S = 6.0  # event minutes each producer publishes per second of wall time
IDLE_FLUSH_S = 3.0  # the harness' BURNGUARD_IDLE_FLUSH_SECONDS
KEEPALIVE_S = IDLE_FLUSH_S / 3  # a producer waiting for the next release sends this often (never idle meanwhile)


@dataclass(frozen=True)
class Feed:
    """One kind of call a producer makes: its allocation, the tier tags drawn for it, events per minute."""

    team: str
    feature: str
    customer: str
    model: str
    provider: str
    environment: str
    tiers: tuple[str, ...]
    per_minute: tuple[int, int]

    @property
    def key(self) -> str:
        return (f"team={self.team}|feature={self.feature}|customer={self.customer}|model={self.model}"
                f"|environment={self.environment}")


def _feed(team: str, feature: str, customer: str, model: str, environment: str, tiers: tuple[str, ...],
          per_minute: tuple[int, int]) -> Feed:
    provider = "anthropic" if model.startswith("claude") else "openai"
    return Feed(team, feature, customer, model, provider, environment, tiers, per_minute)


# stream key -> (minutes behind in event time, feeds)
PRODUCERS: dict[str, tuple[int, tuple[Feed, ...]]] = {
    "gateway-eu": (0, (_feed("search", "answers", "acme", "gpt-4o-mini", "production", ("production",), (3, 6)),
                       _feed("search", "rerank", "globex", "claude-sonnet-4", "production", ("pilot",), (1, 3)),
                       _feed("research", "notebook", "internal", "gpt-4o", "dev", ("sandbox",), (1, 3)))),
    "gateway-us": (0, (_feed("search", "answers", "acme", "gpt-4o-mini", "production", ("production",), (2, 4)),
                       _feed("research", "eval", "internal", "claude-sonnet-4", "production", ("production",),
                             (1, 3)),
                       _feed("research", "notebook", "internal", "gpt-4o", "production", ("sandbox", "production"),
                             (1, 3)))),
    "gateway-late": (60, (_feed("ads", "copygen", "initech", "gpt-4o", "production", ("production",), (2, 5)),
                          _feed("ads", "banner", "initech", "gpt-4o-mini", "production", ("production",), (1, 3)),
                          _feed("research", "notebook", "internal", "gpt-4o", "production", ("sandbox",), (1, 2)))),
}
LATE_PRODUCER = "gateway-late"
#: full keys only the lagging producer feeds: closed on its own clock, or its minutes would all be late
LATE_ONLY_KEYS = {f.key for f in PRODUCERS[LATE_PRODUCER][1]} - {
    f.key for p, (_, feeds) in PRODUCERS.items() if p != LATE_PRODUCER for f in feeds}
# budget id -> (scope, parent, period); caps are set from the generated spend
BUDGETS: dict[str, tuple[dict[str, str], str | None, str]] = {
    "org": ({}, None, "month"),
    "team-search": ({"team": "search"}, "org", "month"),
    "search-answers": ({"team": "search", "feature": "answers"}, "team-search", "month"),
    "team-research": ({"team": "research"}, "org", "month"),
    "research-sandbox": ({"team": "research", "tier": "sandbox"}, "team-research", "day"),
}
SANDBOX = "research-sandbox"


def generate(rounds: int, seed: int) -> list[list[tuple[str, dict[str, Any]]]]:
    """``rounds`` lists of (producer, event): round r is minute r of each producer's own clock."""
    rng = random.Random(seed)
    out: list[list[tuple[str, dict[str, Any]]]] = []
    n = 0
    for r in range(rounds):
        batch = []
        for producer, (behind, feeds) in PRODUCERS.items():
            minute = START + timedelta(minutes=r - behind)
            for f in feeds:
                for _ in range(rng.randint(*f.per_minute)):
                    n += 1
                    ts = minute + timedelta(seconds=rng.uniform(0.0, 59.999))  # in order by minute, not within
                    batch.append((producer, {
                        "timestamp": ts.isoformat(), "model": f.model, "provider": f.provider,
                        "input_tokens": rng.randint(50, 4000), "output_tokens": rng.randint(10, 800),
                        "cost_usd": round(rng.uniform(0.0005, 0.04), 6), "request_id": f"{producer}-{n}",
                        "tags": {"team": f.team, "feature": f.feature, "customer": f.customer,
                                 "environment": f.environment, "tier": rng.choice(f.tiers)}}))
        out.append(batch)
    return out


def _attrs(e: dict[str, Any]) -> dict[str, str]:
    return {**e["tags"], "model": e["model"]}


def key_of(e: dict[str, Any]) -> str:
    a = _attrs(e)
    return (f"team={a['team']}|feature={a['feature']}|customer={a['customer']}|model={a['model']}"
            f"|environment={a['environment']}")


def expected_by_key(events: Iterable[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Full allocation key -> (events, spend), summed here from what was published."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for e in events:
        s = out[key_of(e)]
        s[0] += 1
        s[1] += e["cost_usd"]
    return {k: (int(n), usd) for k, (n, usd) in out.items()}


def expected_by_budget(events: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Budget id -> published spend in its scope (every given dimension, tier included, must match)."""
    out = dict.fromkeys(BUDGETS, 0.0)
    for e in events:
        a = _attrs(e)
        for bid, (scope, _, _) in BUDGETS.items():
            if all(a.get(d) == v for d, v in scope.items()):
                out[bid] += e["cost_usd"]
    return out


def budgets_yaml(sandbox_cap: float) -> str:
    lines = ["version: 1", "budgets:"]
    for bid, (scope, parent, period) in BUDGETS.items():
        cap = sandbox_cap if bid == SANDBOX else 1_000_000
        scope_s = ", ".join(f"{d}: {v}" for d, v in scope.items())
        lines.append(f"  - {{id: {bid}, scope: {{{scope_s}}}, period: {period}, cap_usd: {cap}"
                     + (f", parent: {parent}" if parent else "") + (", tier: sandbox" if bid == SANDBOX else "")
                     + "}")
    return "\n".join(lines) + "\n"


class Traffic(threading.Thread):
    """Publishes the rounds in order at ROUNDS_PER_S (the arrival rate), up to the round released so far.

    While it waits for the next release, every producer keeps sending: one *keep-alive* event every
    ``KEEPALIVE_S`` (a copy of its last event, same event time, new request id), as a live gateway does. A
    producer that sends nothing for the idle time is idle by definition, and once every producer feeding a key
    is idle, the key closes everything it holds: the lagging producer's records for those minutes would then be
    late, rightly. The faults must be tested on a stream that never pauses, so that any late bucket is the
    pipeline's fault. ``published`` is what was sent, keep-alives included (the expected sums are taken from it).
    """

    def __init__(self, bootstrap: str, rounds: list[list[tuple[str, dict[str, Any]]]]) -> None:
        super().__init__(name="traffic", daemon=True)
        self.rounds = rounds
        self.producers = {k: UsageProducer(bootstrap, batch_size=100, max_linger_s=0.2, stream_key=k)
                          for k in PRODUCERS}
        self.sent = 0
        self.extra: list[tuple[str, dict[str, Any]]] = []
        self._last: dict[str, dict[str, Any]] = {}
        self._allowed = 0
        self._cond = threading.Condition()
        self.error: BaseException | None = None

    @property
    def published(self) -> list[dict[str, Any]]:
        """Every event sent so far: the rounds sent, then the keep-alives."""
        return [e for batch in self.rounds[:self.sent] for _, e in batch] + [e for _, e in self.extra]

    def release(self, rounds: int) -> None:
        with self._cond:
            self._allowed = min(max(self._allowed, rounds), len(self.rounds))
            self._cond.notify_all()

    def run(self) -> None:
        try:
            due = time.monotonic()
            while self.sent < len(self.rounds):
                with self._cond:
                    released = self._cond.wait_for(lambda: self.sent < self._allowed, timeout=KEEPALIVE_S)
                    if released:
                        self._cond.wait(max(0.0, due - time.monotonic()))  # the arrival rate, not a wait for a result
                if not released:
                    self._keep_alive()
                    continue
                for producer, event in self.rounds[self.sent]:
                    self.producers[producer].send("llm", event)
                    self._last[producer] = event
                self.sent += 1
                due = max(due + 1 / ROUNDS_PER_S, time.monotonic() - 1.0)
        except BaseException as err:  # noqa: BLE001 - reported by finish()
            self.error = err

    def _keep_alive(self) -> None:
        for producer, last in self._last.items():
            event = {**last, "request_id": f"{producer}-keepalive-{len(self.extra)}"}
            self.producers[producer].send("llm", event)
            self.extra.append((producer, event))  # sent within the linger bound (no flush: the broker may be paused)

    def finish(self, timeout: float) -> None:
        """Release every round, wait until all are sent, flush and close the producers."""
        self.release(len(self.rounds))
        self.join(timeout)
        assert not self.is_alive(), f"publishing did not finish within {timeout}s ({self.sent}/{len(self.rounds)})"
        if self.error is not None:
            raise self.error
        for p in self.producers.values():
            p.close()


def partition_of(stream_key: str) -> int:
    """The usage partition kafka-python's default partitioner puts a producer's envelopes on."""
    return (murmur2(stream_key.encode()) & 0x7FFFFFFF) % PARTITIONS


def last_minutes(events: Iterable[dict[str, Any]]) -> dict[str, datetime]:
    """Full allocation key -> the newest event minute published to it."""
    out: dict[str, datetime] = {}
    for e in events:
        m = datetime.fromisoformat(e["timestamp"]).replace(second=0, microsecond=0)
        out[key_of(e)] = max(out.get(key_of(e), m), m)
    return out
