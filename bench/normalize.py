"""The normalize hot path alone (no Kafka, no Faust): events/s of each stage, reference against fast path.

    python -m bench.normalize [--events 50000] [--batch 500] [--shapes native,litellm] [--repeat 3]

For each shape (``bench.workload``'s native events or LiteLLM payloads, in envelopes of ``--batch``):

- *parse*: ``Normalizer.parse`` per message (decode, validate, price, allocate: one ``CostRecord`` per event),
  the reference (pydantic) path;
- *handler*: what ``Normalize.handle`` does per message before sending: parse, cardinality limits, the
  partial sums per (key, minute), spend per budget, requests per model. ``ref`` builds them from the
  reference records; ``fast`` from :mod:`streams.agents.normalize_work` (msgspec decoding, per-combination
  caches, no model per event), falling back to the reference for what it does not handle: *cold* with empty
  caches (each key of the run seen for the first time: ``--events`` over 50,000 keys), *warm* on the same
  messages again (every key known, as in a worker that has run a while).

Each figure is the best of ``--repeat`` runs in CPU time of the process (the machine is shared); the ratio is fast / ref of the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.workload import Workload
from guardrails.budget_book import BudgetBook
from schemas.cardinality import CardinalityLimiter
from streams.agents.normalize import load_normalizer
from streams.agents.normalize_work import MessageWork, reference_work
from streams.settings import Settings


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Least CPU time of this process over ``repeat`` calls of ``fn`` (CPU, not wall: the machine is shared)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def run(shape: str, events: int, batch: int, repeat: int) -> list[tuple[str, float]]:
    s = Settings(_env_file=None)
    w = Workload(shape=shape, events=events, batch=batch, keys=50_000, partitions=1, span_s=600.0)
    messages = w.messages()[0]
    book = BudgetBook.load(s.budgets)
    levels = tuple(tuple(level) for level in s.rollups)

    def parse_only() -> None:
        n = load_normalizer(s)
        for m in messages:
            n.parse("llm", m)

    def handler(fast: bool) -> Callable[[], None]:
        def go() -> None:
            n, lim = load_normalizer(s), CardinalityLimiter(s.cardinality_limits)
            work = MessageWork(n, book, lim, s.bucket_seconds, levels)
            for m in messages:
                if fast:
                    work.run("llm", m)
                else:
                    reference_work(n, book, lim, s.bucket_seconds, levels, "llm", m)
        return go

    def warm() -> Callable[[], None]:
        work = MessageWork(load_normalizer(s), book, CardinalityLimiter(s.cardinality_limits), s.bucket_seconds,
                           levels)
        for m in messages:  # every key seen once: the caches hold them
            work.run("llm", m)

        def go() -> None:
            for m in messages:
                work.run("llm", m)
        return go

    out = [("parse (reference)", events / best(parse_only, repeat)),
           ("handler ref", events / best(handler(False), repeat)),
           ("handler fast, cold", events / best(handler(True), repeat)),
           ("handler fast, warm", events / best(warm(), repeat))]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--shapes", default="native,litellm")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    for shape in args.shapes.split(","):
        rows = run(shape, args.events, args.batch, args.repeat)
        ref = dict(rows)["handler ref"]
        for name, rate in rows:
            print(f"{shape:8} {name:20} {rate:>10,.0f} events/s  {rate / ref:5.2f}x handler ref")


if __name__ == "__main__":
    main()
