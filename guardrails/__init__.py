"""burnguard: guardrails."""
