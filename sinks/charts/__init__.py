"""Charts rendered for Slack messages (matplotlib, Agg: no display needed)."""
