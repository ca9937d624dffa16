"""``costs`` messages as normalize sends them, for the aggregate handler's hand-worked tests."""

from __future__ import annotations

import orjson


def costs(clock: str, offset: int, ts: float, usd: float) -> bytes:
    """One key's ``costs`` message: one record of ``usd`` at event time ``ts`` from source clock ``clock``
    (``usage.llm/P:producer``), its origin the clock's usage partition at ``offset``."""
    return orjson.dumps({"o": [clock.split(":")[0], offset], "clk": [clock, ts],
                         "records": [{"ts": ts, "cost_usd": usd, "requests": 1}]})
