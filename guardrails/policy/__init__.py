"""Policies as code: YAML rules (match -> when -> then), first match wins, an explicit default.

Modules, one concept each: :mod:`.registry` (name -> class), :mod:`.operators`
(``lt lte gt gte eq in``), :mod:`.conditions` and :mod:`.actions` (registered, each with its
schema and a YAML example), :mod:`.match` (budget selectors), :mod:`.durations`,
:mod:`.model` (the file, validated at load), :mod:`.evaluate` (first match and the explanation),
:mod:`.docs` (``docs/policies.md`` from the registries).
"""

from guardrails.policy.actions import DecisionContext, Effect, actions
from guardrails.policy.conditions import conditions
from guardrails.policy.evaluate import Explanation, evaluate
from guardrails.policy.model import DEFAULT_POLICY_PATH, ConfigError, Policy, load_policy

__all__ = ["ConfigError", "DEFAULT_POLICY_PATH", "DecisionContext", "Effect", "Explanation", "Policy", "actions",
           "conditions", "evaluate", "load_policy"]
