"""aggregate saves each changed key once per batch of messages (the agent's mode): a crash before the save
re-reads the batch from the last saved states and re-emits byte-identical batches; a state replaced under
the decoded copy (a rebalance's recovery) is decoded again; a half-applied message leaves nothing behind."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson

import streams.state.values  # noqa: F401 - registers KeyWindows
from schemas.bucket import load_batch
from streams.agents.aggregate import Aggregate
from streams.agents.normalize import KEYS
from streams.settings import Settings
from streams.state.tables import TypedTable
from streams.state.windows import KeyWindows

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
SETTINGS = Settings(_env_file=None, allowed_lateness_seconds=0, bucket_seconds=60)
GW = "usage.llm/0:gw"


def message(off: int, newest: float, **spend: float) -> bytes:
    return orjson.dumps({"o": ["usage.llm/0", off], "clk": [GW, newest],
                         "keys": {k: [{"ts": newest, "cost_usd": usd, "requests": 1}] for k, usd in spend.items()}})


MESSAGES = [message(1, T0 + 10, a=1.0, b=2.0), message(2, T0 + 20, a=4.0), message(3, T0 + 70, a=8.0, b=16.0),
            message(4, T0 + 80, b=32.0), message(5, T0 + 130, a=64.0, b=128.0)]


class Agent:
    def __init__(self, table: dict[str, bytes]) -> None:
        self.table, self.sent = table, []

        async def send(key: str, value: bytes) -> None:
            self.sent.append(value)

        self.handler = Aggregate(TypedTable(table, "open_buckets", KeyWindows), send, SETTINGS, autosave=False)

    def feed(self, offsets: range, save: bool = True) -> None:
        for off in offsets:
            asyncio.run(self.handler.handle(KEYS, MESSAGES[off], 0, T0 + 10_000, offset=off))
        if save:
            self.handler.save()

    def batches(self) -> list[tuple[str, int, list[tuple[float, float]]]]:
        return [(b.key, b.seq, [(x.start.timestamp() - T0, x.spend_usd) for x in b.buckets])
                for b in map(load_batch, self.sent)]


def test_nothing_is_written_before_the_save_and_each_key_once_at_it() -> None:
    agent = Agent({})
    agent.feed(range(0, 3), save=False)
    assert agent.table == {}
    assert agent.handler.save() == 2  # a and b, once each
    assert sorted(agent.table) == ["a", "b"]


def test_a_crash_inside_a_batch_re_emits_the_same_batches_from_the_last_save() -> None:
    first = Agent({})
    first.feed(range(0, 2))
    saved = dict(first.table)  # the changelog when the worker was killed ...
    first.feed(range(2, 5), save=False)  # ... inside this batch: sent its buckets, never saved nor acked
    replayed = Agent(saved)
    replayed.feed(range(2, 5))
    assert first.batches() == [("a", 1, [(0.0, 5.0)]), ("b", 1, [(0.0, 2.0)]), ("a", 2, [(60.0, 8.0)]),
                               ("b", 2, [(60.0, 48.0)])]
    assert replayed.batches() == first.batches()


def test_a_state_replaced_under_the_decoded_copy_is_decoded_again() -> None:
    agent = Agent({})
    agent.feed(range(0, 1))
    other = Agent({})  # another worker owned the partition meanwhile and moved the key on
    other.feed(range(0, 2))
    agent.table["a"] = other.table["a"]  # the recovered changelog
    agent.feed(range(2, 3))
    assert [b for b in agent.batches() if b[0] == "a"] == [("a", 1, [(0.0, 5.0)])]


def test_a_message_failing_half_way_leaves_the_last_good_state() -> None:
    agent = Agent({})
    agent.feed(range(0, 1), save=False)
    bad = orjson.dumps({"o": ["usage.llm/0", 2], "clk": [GW, T0 + 20],
                        "keys": {"a": [{"ts": T0 + 20, "cost_usd": 4.0, "requests": 1}, {"cost_usd": 1.0}]}})
    try:
        asyncio.run(agent.handler.handle(KEYS, bad, 0, T0 + 10_000, offset=1))
    except KeyError:
        pass
    else:
        raise AssertionError("a record without ts must fail")
    agent.handler.save()
    kw = TypedTable(agent.table, "open_buckets", KeyWindows).get("a")
    assert kw is not None and kw.input_offset == 0 and [row[0] for row in kw.sums.values()] == [1.0]
