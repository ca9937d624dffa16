"""The burnguard Faust app: importing this module registers every agent, timer and web view.

Run with ``burnguard worker`` (which starts the embedded broker when ``BURNGUARD_BROKER`` is
unset) or ``faust -A streams.app worker``. Declarations live in :mod:`streams.topology`, agents in
:mod:`streams.agents` (one module per family), views in :mod:`streams.web`.
"""

from __future__ import annotations

from streams import web  # noqa: F401
from streams.agents import aggregate, budgets, detect, gpu, guardrails, normalize, store  # noqa: F401
from streams.agents import incidents  # noqa: F401  - alerts grouped into incidents, Slack delivery and buttons
from streams.agents import approvals_slack  # noqa: F401  - finance approvals in Slack (after guardrails)
from streams.agents import anomalies  # noqa: F401  - spend anomalies with a $ impact -> overruns on their budgets
from streams.agents.normalize import load_budgets, load_normalizer
from streams.topology import app

__all__ = ["app", "load_budgets", "load_normalizer"]
