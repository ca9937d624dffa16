"""bench.early_firing: the spike key's load and how its figure is reported (no broker: the run itself is
``python -m bench.early_firing``)."""

from __future__ import annotations

import orjson

from bench.early_firing import PER_MINUTE, EarlyFiringResult, SpikeLoad
from bench.run import early_firing_rows

M = 1_800_000_000.0  # a minute start (epoch s)


def test_every_live_minute_holds_its_usual_calls_the_first_one_included() -> None:
    load = SpikeLoad()
    first = [e for t in (M + 30.0, M + 30.2, M + 45.0, M + 59.9) for e in load.usual(t)]
    second = [e for k in range(240) for e in load.usual(M + 60 + 0.25 * k)]
    assert len(first) == PER_MINUTE and len(second) == PER_MINUTE
    assert len({orjson.loads(e)["request_id"] for e in first + second}) == 2 * PER_MINUTE


def test_the_history_is_one_envelope_per_past_minute_of_usual_calls() -> None:
    envelopes = SpikeLoad().history(until=M)
    assert len(envelopes) == 150 and all(len(orjson.loads(v)) == PER_MINUTE for v in envelopes)
    assert max(e["timestamp"] for v in envelopes for e in orjson.loads(v)) < "2027-01-15T08:00:00Z"


def test_the_row_says_how_long_and_how_far_ahead_of_the_close() -> None:
    res = EarlyFiringResult(factor=10, burst_s=2, minute=M, first_sent=M + 5.0, stored=M + 7.5, confirmed=True)
    assert res.latency == 2.5 and res.ok
    assert res.text() == "2.50 s (52 s before its minute ends, 112 s before it is closable)"
    [row, confirmed] = early_firing_rows(res)
    assert (row.target, row.met, confirmed.met) == ("≤ 5 s", "yes", "yes")
    late = EarlyFiringResult(factor=10, burst_s=2, minute=M, first_sent=M + 5.0, stored=M + 61.0)
    assert not late.ok and early_firing_rows(late)[0].met == "no"
    missing = EarlyFiringResult(factor=10, burst_s=2, minute=M, first_sent=M + 5.0)
    assert missing.latency is None and not missing.ok and missing.text().startswith("no alert within")
